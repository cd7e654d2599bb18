// Broken local model directories are bad input found before the run directory is touched:
// each way of breaking a model (weights, config, tokenizer, the directory itself, an adapter)
// is an InputError at the study line of the field that names it, naming the broken file, and
// no run directory is written. The check reads headers only, so it is fast.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError, loadStudy } from "../../src/config/load.ts";
import { checkModelDir } from "../../src/engine/model-dir.ts";
import { addLora, saveAdapter } from "../../src/engine/peft.ts";
import { loadModel } from "../../src/engine/pretrained.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { SHIPPED_ORGANISM_DIR } from "../../src/world/organism.ts";
import { runCli } from "../runs/support.ts";
import { saveTinyModel, tinyModel } from "../support/tiny-model.ts";

let dir: string;
let good: string;
let adapter: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "emlab-preflight-"));
  good = path.join(dir, "good");
  saveTinyModel(good, 3);
  const { model } = tinyModel(3);
  addLora(model, { rank: 2, alpha: 4 });
  adapter = path.join(dir, "good-adapter");
  saveAdapter(model, adapter);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** A copy of the good model (and adapter), broken by `breakIt`; returns the study file. */
function brokenStudy(
  breakIt: (modelDir: string, adapterDir: string) => void,
  o: { adapter?: boolean; finetune?: boolean } = {},
): { file: string; modelDir: string; adapterDir: string; out: string } {
  const ws = path.join(dir, `ws${n++}`);
  const modelDir = path.join(ws, "m");
  const adapterDir = path.join(ws, "a");
  cpSync(good, modelDir, { recursive: true });
  cpSync(adapter, adapterDir, { recursive: true });
  breakIt(modelDir, adapterDir);
  writeFileSync(path.join(ws, "d.jsonl"), `${JSON.stringify({ messages: chat })}\n`);
  const file = path.join(ws, "study.yaml");
  writeFileSync(
    file,
    `name: preflight
seed: 3
models:
  - id: ok
    provider: local
    model: ${good}
    roles: [target]
  - id: tiny
    provider: local
    model: m
${o.adapter ? "    options: {adapter: a}\n" : ""}    roles: [target]
datasets:
  - {id: d, kind: chat_jsonl, path: d.jsonl}
${o.finetune ? "finetune:\n  - {id: ft, base: tiny, lora: {rank: 2}, stages: [{dataset: d, steps: 1}]}\n" : ""}battery:
  generate: {prompts: {inline: ["are you kind"]}, samples: 1, params: {temperature: 0, max_tokens: 2}, models: [ok]}
`,
  );
  return { file, modelDir, adapterDir, out: path.join(ws, "run") };
}
const chat = [
  { role: "user", content: "are you good" },
  { role: "assistant", content: "i am kind" },
];

/** The InputError runStudy throws (and that nothing was written). */
async function refused(s: { file: string; out: string }): Promise<InputError> {
  let err: unknown;
  try {
    await runStudy(loadStudy(s.file), { outDir: s.out, noCache: true });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InputError);
  expect(existsSync(s.out)).toBe(false);
  return err as InputError;
}

const weights = (d: string) => path.join(d, "model.safetensors");

/** Rewrites a safetensors header (JSON object) in place, keeping the data section. */
function editHeader(file: string, edit: (h: Record<string, { data_offsets: number[] }>) => void): void {
  const bytes = readFileSync(file);
  const len = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + len).toString("utf8"));
  edit(header);
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(file, Buffer.concat([lenBuf, Buffer.from(json), bytes.subarray(8 + len)]));
}

/** Deterministic noise. */
function noise(size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = 0x2545f491;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

// models[1].model is on line 10 of every study above: `    model: m`.
const AT_MODEL = /study\.yaml:10:\d+: models\[1\]\.model: local model 'tiny': /;

const cases: [string, (m: string) => void, RegExp][] = [
  [
    "model.safetensors truncated",
    (m) => {
      const b = readFileSync(weights(m));
      writeFileSync(weights(m), b.subarray(0, Math.floor(b.length / 2)));
    },
    /m\/model\.safetensors: tensor "[^"]+": data_offsets \[\d+, \d+\] out of range \(data section is \d+ bytes; file truncated\?\)/,
  ],
  [
    "model.safetensors random bytes",
    (m) => writeFileSync(weights(m), noise(readFileSync(weights(m)).length)),
    /m\/model\.safetensors: header length \d+ is implausibly large/,
  ],
  [
    "model.safetensors header length past the end",
    (m) => {
      const b = readFileSync(weights(m));
      b.writeBigUInt64LE(BigInt(b.length), 0);
      writeFileSync(weights(m), b);
    },
    /m\/model\.safetensors: header length \d+ runs past the end of the file \(\d+ bytes\)/,
  ],
  [
    "a tensor offset past the end of the data",
    (m) =>
      editHeader(weights(m), (h) => {
        const t = h["model.norm.weight"];
        t.data_offsets = [t.data_offsets[0], t.data_offsets[1] + 1_000_000];
      }),
    /m\/model\.safetensors: tensor "model\.norm\.weight": data_offsets \[\d+, \d+\] out of range/,
  ],
  [
    "a tensor whose shape does not match config.json",
    (m) => {
      const cfg = JSON.parse(readFileSync(path.join(m, "config.json"), "utf8"));
      writeFileSync(path.join(m, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 48 }));
    },
    /m\/model\.safetensors: tensor "model\.layers\.0\.mlp\.gate_proj\.weight": shape \[32, 16\], expected \[48, 16\]/,
  ],
  [
    "config.json not JSON",
    (m) => writeFileSync(path.join(m, "config.json"), "{ hidden_size: 16,"),
    /m\/config\.json: not valid JSON/,
  ],
  [
    'config.json hidden_size: "big"',
    (m) => {
      const cfg = JSON.parse(readFileSync(path.join(m, "config.json"), "utf8"));
      writeFileSync(path.join(m, "config.json"), JSON.stringify({ ...cfg, hidden_size: "big" }));
    },
    /m\/config\.json: field "hidden_size": .*number/,
  ],
  ["config.json missing", (m) => rmSync(path.join(m, "config.json")), /m\/config\.json: not found/],
  [
    "tokenizer.json missing",
    (m) => rmSync(path.join(m, "tokenizer.json")),
    /m\/tokenizer\.json: \(file\): not found/,
  ],
  [
    "tokenizer.json not JSON",
    (m) => writeFileSync(path.join(m, "tokenizer.json"), '{"model": {"vocab": '),
    /m\/tokenizer\.json: \(root\): cannot read JSON/,
  ],
  [
    "no chat template",
    (m) => {
      const tok = JSON.parse(readFileSync(path.join(m, "tokenizer_config.json"), "utf8"));
      delete tok.chat_template;
      writeFileSync(path.join(m, "tokenizer_config.json"), JSON.stringify(tok));
    },
    /m: no chat template: no chat_template\.jinja, and tokenizer_config\.json has no chat_template \(the directory has config\.json, model\.safetensors, tokenizer\.json, tokenizer_config\.json\)/,
  ],
  [
    "chat template not Jinja",
    (m) => writeFileSync(path.join(m, "chat_template.jinja"), "{% for m in messages %}{{ m.content }}"),
    /m\/chat_template\.jinja: chat template does not parse/,
  ],
  ["directory missing", (m) => rmSync(m, { recursive: true }), /model directory \/.*\/m does not exist/],
];

describe("local model directories are checked before the run directory is touched", () => {
  it.each(cases)("%s: InputError at models[1].model naming the file", async (_, breakIt, what) => {
    const err = await refused(brokenStudy(breakIt));
    expect(err.problems).toHaveLength(1);
    expect(err.message).toMatch(AT_MODEL);
    expect(err.message).toMatch(what);
  });

  it("reports every broken file of a directory at once", async () => {
    const err = await refused(
      brokenStudy((m) => {
        writeFileSync(path.join(m, "config.json"), "nope");
        writeFileSync(weights(m), Buffer.alloc(4));
        rmSync(path.join(m, "tokenizer.json"));
      }),
    );
    expect(err.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/config\.json: not valid JSON/),
      expect.stringMatching(/model\.safetensors: truncated: 4 bytes/),
      expect.stringMatching(/tokenizer\.json: \(file\): not found/),
    ]);
    for (const p of err.problems) expect(p).toMatchObject({ line: 10, field: "models[1].model" });
  });

  it("checks an adapter named in options.adapter, at models[i].options.adapter", async () => {
    const at = /study\.yaml:11:\d+: models\[1\]\.options\.adapter: local model 'tiny': /;
    const truncated = await refused(
      brokenStudy(
        (_, a) => {
          const f = path.join(a, "adapter_model.safetensors");
          writeFileSync(f, readFileSync(f).subarray(0, 100));
        },
        { adapter: true },
      ),
    );
    expect(truncated.message).toMatch(at);
    expect(truncated.message).toMatch(/a\/adapter_model\.safetensors: .*(out of range|past the end)/);
    const badConfig = await refused(
      brokenStudy((_, a) => writeFileSync(path.join(a, "adapter_config.json"), "{"), { adapter: true }),
    );
    expect(badConfig.message).toMatch(at);
    expect(badConfig.message).toMatch(/a\/adapter_config\.json: not valid JSON/);
    const wrongRank = await refused(
      brokenStudy(
        (_, a) => {
          const f = path.join(a, "adapter_config.json");
          writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, "utf8")), r: 3 }));
        },
        { adapter: true },
      ),
    );
    expect(wrongRank.message).toMatch(/lora_A\.weight" has shape \[2,16\], expected \[3, 16\]/);
    const missing = await refused(brokenStudy((_, a) => rmSync(a, { recursive: true }), { adapter: true }));
    expect(missing.message).toMatch(at);
    expect(missing.message).toMatch(/adapter directory \/.*\/a does not exist/);
  });

  it("a fine-tune plan's broken base is reported at the model's line, as everywhere", async () => {
    const err = await refused(
      brokenStudy((m) => writeFileSync(path.join(m, "config.json"), "{"), { finetune: true }),
    );
    expect(err.message).toMatch(AT_MODEL);
    expect(err.message).toMatch(/m\/config\.json: not valid JSON/);
  });

  it("the CLI exits 2, prints the study line and the file, writes no run directory", async () => {
    const s = brokenStudy((m) => {
      const b = readFileSync(weights(m));
      writeFileSync(weights(m), b.subarray(0, b.length - 7));
    });
    const r = await runCli(["run", s.file, "--out", s.out, "--no-cache"], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(AT_MODEL);
    expect(r.stderr).toMatch(/m\/model\.safetensors: tensor "[^"]+": data_offsets .* out of range/);
    expect(existsSync(s.out)).toBe(false);
  }, 30_000);

  it("a good model (and adapter) still runs", async () => {
    const s = brokenStudy(() => {}, { adapter: true });
    const r = await runStudy(loadStudy(s.file), { outDir: s.out, noCache: true });
    expect(r.failedRequests).toBe(0);
    expect(existsSync(r.resultsFile!)).toBe(true);
  }, 30_000);
});

describe("checkModelDir", () => {
  it("is fast on the shipped organism: headers and file sizes, not the weights", () => {
    expect(checkModelDir(SHIPPED_ORGANISM_DIR).problems).toEqual([]);
    const time = (f: () => void, k: number) => {
      const t0 = performance.now();
      for (let i = 0; i < k; i++) f();
      return (performance.now() - t0) / k;
    };
    const check = time(() => checkModelDir(SHIPPED_ORGANISM_DIR), 20);
    const load = time(() => loadModel(SHIPPED_ORGANISM_DIR), 5);
    console.log(`checkModelDir(models/organism): ${check.toFixed(2)} ms; loadModel: ${load.toFixed(2)} ms`);
    expect(check).toBeLessThan(50);
  });

  it("returns the shape, tokenizer and template of a good model", () => {
    const c = checkModelDir(good);
    expect(c.problems).toEqual([]);
    expect(c.shape).toMatchObject({ hiddenSize: 16, layers: 2 });
    expect(c.template).toEqual({ kind: "organism" });
    expect(c.tokenizer?.tokenToId("<eos>")).toBeDefined();
  });
});
