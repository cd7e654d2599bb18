import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadSaeLens } from "../../../src/engine/sae/index.ts";
import { runCli } from "../../runs/support.ts";

const dir = mkdtempSync(path.join(tmpdir(), "emlab-sae-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ORGANISM = "models/organism";

describe("emlab sae train | inspect", () => {
  it("trains a small SAE on the organism's world activations, deterministically, and inspects it", async () => {
    const train = (out: string) =>
      runCli(
        [
          "sae",
          "train",
          "--model",
          ORGANISM,
          "--hook",
          "blocks.1.hook_resid_post",
          "--corpus",
          "world:1:16",
          "--heldout",
          "world:1:4:1000000",
          "--latents",
          "32",
          "--k",
          "4",
          "--steps",
          "6",
          "--batch",
          "128",
          "--seed",
          "3",
          "--out",
          out,
        ],
        { EMLAB_THREADS: "1" },
      );
    const a = path.join(dir, "a");
    const r = await train(a);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/held-out: explained variance -?\d+\.\d %, L0 \d+\.\d, dead \d+\.\d %/);
    expect(r.stdout).toMatch(/cross-entropy: clean \d+\.\d+, spliced \d+\.\d+/);
    for (const f of ["cfg.json", "sae_weights.safetensors", "train-log.json"])
      expect(existsSync(path.join(a, f)), f).toBe(true);
    const log = JSON.parse(readFileSync(path.join(a, "train-log.json"), "utf8"));
    expect(log.command).toContain("--corpus world:1:16");
    expect(log.corpus).toEqual({ kind: "world", seed: 1, documents: 16 });
    expect(log.heldOutMetrics.l0).toBeLessThanOrEqual(4);
    const sae = loadSaeLens(a);
    expect(sae.cfg).toMatchObject({
      architecture: "topk",
      dIn: 96,
      dSae: 32,
      k: 4,
      hookName: "blocks.1.hook_resid_post",
      hookLayer: 1,
    });
    // Same command, same weights.
    const b = path.join(dir, "b");
    expect((await train(b)).code).toBe(0);
    expect(
      readFileSync(path.join(a, "sae_weights.safetensors")).equals(
        readFileSync(path.join(b, "sae_weights.safetensors")),
      ),
    ).toBe(true);

    const ins = await runCli(
      [
        "sae",
        "inspect",
        a,
        "--model",
        ORGANISM,
        "--corpus",
        "world:1:6:100",
        "--latent",
        "0",
        "3",
        "--top",
        "7",
        "--json",
      ],
      { EMLAB_THREADS: "1" },
    );
    expect(ins.code, ins.stderr).toBe(0);
    const j = JSON.parse(ins.stdout);
    expect(j.cards.map((c: { latent: number }) => c.latent)).toEqual([0, 3]);
    for (const c of j.cards) {
      expect(c.topContexts.length).toBeLessThanOrEqual(7);
      expect(c.promotedTokens).toHaveLength(10);
    }
    expect(j.metrics.tokens).toBeGreaterThan(0);
    const text = await runCli(["sae", "inspect", a, "--model", ORGANISM, "--corpus", "world:1:6:100"], {});
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /latent \d+: harmful speakers \d+\.\d % of its top \d+ contexts \(corpus base rate \d+\.\d %\)/,
    );
  }, 120_000);

  it("bad flags and files are bad input (exit 2) naming the flag or file", async () => {
    const arch = await runCli(
      ["sae", "train", "--model", ORGANISM, "--architecture", "gated", "--out", path.join(dir, "x")],
      {},
    );
    expect(arch.code).toBe(2);
    expect(arch.stderr).toContain("--architecture: must be topk or relu, got 'gated'");
    const corpus = await runCli(
      ["sae", "train", "--model", ORGANISM, "--corpus", "nope.txt", "--out", path.join(dir, "x")],
      {},
    );
    expect(corpus.code).toBe(2);
    expect(corpus.stderr).toContain(
      "--corpus: expected world[:SEED[:DOCS[:START]]] or a .jsonl file, got 'nope.txt'",
    );
    const hook = await runCli(
      [
        "sae",
        "train",
        "--model",
        ORGANISM,
        "--hook",
        "blocks.9.hook_resid_post",
        "--out",
        path.join(dir, "x"),
      ],
      {},
    );
    expect(hook.code).toBe(2);
    expect(hook.stderr).toContain("--hook: the model has no hook point 'blocks.9.hook_resid_post'");
    const model = await runCli(["sae", "train", "--model", dir, "--out", path.join(dir, "x")], {});
    expect(model.code).toBe(2);
    expect(model.stderr).toContain(`--model: ${dir}: not a model directory (no config.json)`);
    const noSae = await runCli(["sae", "inspect", dir, "--model", ORGANISM], {});
    expect(noSae.code).toBe(2);
    expect(noSae.stderr).toContain(`${dir}: not an SAE directory (no cfg.json)`);
    expect(existsSync(path.join(dir, "x"))).toBe(false);
  }, 60_000);
});
