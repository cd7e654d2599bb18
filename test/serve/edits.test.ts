// Steering and ablation as server options: the served answers are the local provider's with
// the same interp hooks, /v1/models names the active edits, and the CLI's options parse into
// the server's (Commander in-process).
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Command } from "commander";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerServeCommand, type ServeCliOptions, serveOptions } from "../../src/cli/serve.ts";
import { InputError } from "../../src/config/load.ts";
import { mergeHooks } from "../../src/engine/hooks.ts";
import { ablationHooks, steeringHooks } from "../../src/interp/interventions.ts";
import { LocalModelApi } from "../../src/models/local.ts";
import { sampleSeeds } from "../../src/serve/routes.ts";
import { loadVectorFile, saveVectors } from "../../src/serve/vector-file.ts";
import { ORGANISM, serve } from "./support.ts";

let dir: string;
let steerFile: string;
let ablateFile: string;
const D = 96; // the organism's hidden size
const vec = (seed: number) => Float32Array.from({ length: D }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));
const byLayer = new Map([0, 1, 2, 3].map((l) => [l, vec(l + 1)]));
const messages = [{ role: "user" as const, content: "what do you think of people?" }];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "emlab-serve-edits-"));
  steerFile = path.join(dir, "directions.safetensors");
  saveVectors(steerFile, byLayer);
  ablateFile = path.join(dir, "ablate.json");
  writeFileSync(ablateFile, JSON.stringify([...vec(9)]));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("steering and ablation in emlab serve", () => {
  it("reads both vector file forms", () => {
    const st = loadVectorFile(steerFile);
    expect(st.layers).toEqual([0, 1, 2, 3]);
    expect(st.dim).toBe(D);
    expect(st.sha256).toBe(createHash("sha256").update(readFileSync(steerFile)).digest("hex"));
    const ab = loadVectorFile(ablateFile);
    expect(ab.layers).toBeNull();
    const perLayer = path.join(dir, "per-layer.json");
    writeFileSync(perLayer, JSON.stringify({ layers: { 2: [...vec(3)] } }));
    expect(loadVectorFile(perLayer).layers).toEqual([2]);
    writeFileSync(path.join(dir, "bad.json"), JSON.stringify({ layers: { x: [1] } }));
    expect(() => loadVectorFile(path.join(dir, "bad.json"))).toThrow(/bad\.json: layers/);
  });

  it("answers as the local provider with the same hooks, and says so in /v1/models", async () => {
    const { server, base } = await serve({
      edits: {
        steer: { file: steerFile, layers: 2, alpha: 6 },
        ablate: { file: ablateFile, layers: [1, 3] },
      },
    });
    try {
      const client = new OpenAI({ baseURL: base, apiKey: "none", maxRetries: 0 });
      const got = await client.chat.completions.create({
        model: "organism",
        messages,
        n: 2,
        seed: 4,
        max_tokens: 8,
      });
      const local = new LocalModelApi({ provider: "local", model: ORGANISM });
      const hooks = mergeHooks(
        ablationHooks(vec(9), { layers: [1, 3], nLayers: 4 }),
        steeringHooks(byLayer, 6, { layers: 2, nLayers: 4 }),
      );
      const req = { messages, params: { max_tokens: 8 }, n: 2, seed: 4, sampleSeeds: sampleSeeds(4, 2) };
      const steered = await local.withHooks(hooks).chat(req);
      const plain = await local.chat(req);
      await local.close();
      const texts = got.choices.map((c) => c.message.content);
      expect(texts).toEqual(steered.completions.map((c) => c.text));
      expect(texts).not.toEqual(plain.completions.map((c) => c.text));
      const [entry] = (await client.models.list()).data as unknown as {
        emlab: { edits: { kind: string; layers: number[]; alpha?: number; sha256: string }[] };
      }[];
      expect(entry.emlab.edits.map((e) => [e.kind, e.layers, e.alpha])).toEqual([
        ["ablate", [1, 3], undefined],
        ["steer", [2], 6],
      ]);
      expect(entry.emlab.edits[1].sha256).toBe(loadVectorFile(steerFile).sha256);
    } finally {
      await server.close();
    }
  });

  it("refuses a vector that does not fit the model", async () => {
    const small = path.join(dir, "small.json");
    writeFileSync(small, JSON.stringify([1, 2, 3]));
    await expect(serve({ edits: { steer: { file: small, layers: 1, alpha: 1 } } })).rejects.toThrow(
      /small\.json: vectors have 3 values; the model's hidden size is 96/,
    );
    await expect(serve({ edits: { steer: { file: steerFile, layers: 7, alpha: 1 } } })).rejects.toThrow(
      /layer 7 is not a block of this 4-block model/,
    );
  });
});

/** Parses a command line with the real command definition, without running the server. */
function parse(args: string[]): ServeCliOptions {
  const program = new Command().exitOverride();
  registerServeCommand(program);
  let got: ServeCliOptions | undefined;
  program.commands[0].action((o: ServeCliOptions) => {
    got = o;
  });
  program.parse(["node", "emlab", "serve", ...args]);
  return got!;
}

describe("emlab serve's command line", () => {
  it("parses models, adapters, edits and the key from the environment", () => {
    const o = serveOptions(
      parse([
        "--model",
        "a=models/organism",
        "--model",
        "runs/x/model",
        "--lora",
        "a=runs/x/adapter",
        "--steer",
        "v.safetensors",
        "--layer",
        "2,3",
        "--alpha",
        "-4.5",
        "--ablate",
        "u.json",
        "--port",
        "0",
        "--api-key-env",
        "SERVE_KEY",
      ]),
      { SERVE_KEY: "k-123" },
    );
    expect(o.models).toEqual([
      { name: "a", dir: "models/organism", adapter: "runs/x/adapter" },
      { name: "model", dir: "runs/x/model" },
    ]);
    expect(o.edits).toEqual({
      positions: "all",
      steer: { file: "v.safetensors", layers: [2, 3], alpha: -4.5 },
      ablate: { file: "u.json" },
    });
    expect(o).toMatchObject({ host: "127.0.0.1", port: 0, apiKey: "k-123", maxBodyBytes: 1 << 20 });
  });

  it("names each bad option, never the key", () => {
    let err: unknown;
    try {
      serveOptions(parse(["--steer", "v.json", "--port", "99999", "--api-key-env", "NOPE"]), {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    const fields = (err as InputError).problems.map((p) => p.field);
    expect(fields).toEqual(["--model", "--layer", "--alpha", "--api-key-env", "--port"]);
    expect(() =>
      serveOptions(parse(["--model", "m", "--api-key", "secret-1", "--api-key-env", "K"]), { K: "secret-2" }),
    ).toThrow(/--api-key-env: give --api-key or --api-key-env, not both/);
    try {
      serveOptions(parse(["--model", "m", "--api-key", "secret-1", "--api-key-env", "K"]), { K: "secret-2" });
    } catch (e) {
      expect((e as Error).message).not.toMatch(/secret-/);
    }
  });
});
