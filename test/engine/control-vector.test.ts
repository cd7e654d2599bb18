// Control vector GGUF (llama.cpp / repeng layout): round trip, malformed files, and the file
// (a run's persona directions, an SAE's latents) steering llama.cpp itself. node-llama-cpp has no control-vector option, so the last check
// compiles a small program against node-llama-cpp's prebuilt libllama + libllama-common (the
// headers come from the llama.cpp source bundle it ships) that loads the file with llama.cpp's
// own loader (common_control_vector_load) and applies it (llama_set_adapter_cvec). It skips,
// saying why, without g++ or those files.

import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { registerVectorsCommand, runPersonaDirections } from "../../src/cli/vectors.ts";
import { loadStudy } from "../../src/config/load.ts";
import { noGrad } from "../../src/engine/autograd.ts";
import { shapeFromModelConfig } from "../../src/engine/config.ts";
import { generate } from "../../src/engine/generate.ts";
import { type HookFn, mergeHooks } from "../../src/engine/hooks.ts";
import {
  blockOfDirectionTensor,
  directionTensorName,
  readControlVector,
  writeControlVector,
} from "../../src/engine/io/control-vector.ts";
import { writeGgufModel } from "../../src/engine/io/gguf.ts";
import {
  GgmlType,
  type GgufTensorIn,
  GgufType,
  type GgufValue,
  gguf,
  readGguf,
  writeGgufFile,
} from "../../src/engine/io/gguf-format.ts";
import { parseHfConfig } from "../../src/engine/io/hf-config.ts";
import { loadTokenizer } from "../../src/engine/io/tokenizer.ts";
import { LlamaModel } from "../../src/engine/model.ts";
import { Rng } from "../../src/engine/rng.ts";
import { latentSteerHook } from "../../src/engine/sae/hooks.ts";
import { SparseAutoencoder } from "../../src/engine/sae/sae.ts";
import { saveSaeLens } from "../../src/engine/sae/saelens.ts";
import { steeringHooks } from "../../src/interp/interventions.ts";
import { norm } from "../../src/interp/vectors.ts";
import { RESULTS_FILE } from "../../src/results/results.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { registerRuleJudge } from "../interp/rule-judge.ts";
import { runCommandInProcess } from "../support/cli-in-process.ts";
import { refPython, skipWithoutRef } from "../support/python-ref.ts";
import { saveTinyModel } from "../support/tiny-model.ts";

const dir = mkdtempSync(join(tmpdir(), "emlab-cvec-"));

function randomVector(d: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: d }, () => rng.normal() * scale);
}

describe("control vector GGUF", () => {
  it("round-trips directions by block index, in llama.cpp's layout", () => {
    const path = join(dir, "rt.gguf");
    const directions = new Map([
      [5, randomVector(24, 5)],
      [1, randomVector(24, 1)],
      [3, randomVector(24, 3)],
    ]);
    writeControlVector(path, { modelHint: "qwen2", directions });
    const back = readControlVector(path);
    expect(back.modelHint).toBe("qwen2");
    expect(back.layerCount).toBe(3);
    expect([...back.directions.keys()]).toEqual([1, 3, 5]);
    for (const [b, v] of directions) expect(back.directions.get(b)).toEqual(v);
    // The raw file: the keys and types repeng writes, F32 1-D tensors named by block.
    const raw = readGguf(path);
    expect(raw.metadata.get("general.architecture")).toBe("controlvector");
    expect(raw.metadataTypes.get("controlvector.model_hint")).toBe(GgufType.STRING);
    expect(raw.metadataTypes.get("controlvector.layer_count")).toBe(GgufType.UINT32);
    expect(raw.tensors.map((t) => [t.name, t.type, t.ne])).toEqual([
      ["direction.1", GgmlType.F32, [24]],
      ["direction.3", GgmlType.F32, [24]],
      ["direction.5", GgmlType.F32, [24]],
    ]);
  });

  it("numbers direction.N as block N and has no name for block 0", () => {
    expect(directionTensorName(7)).toBe("direction.7");
    expect(blockOfDirectionTensor("direction.7")).toBe(7);
    expect(blockOfDirectionTensor("direction.0")).toBeUndefined();
    expect(blockOfDirectionTensor("direction.x")).toBeUndefined();
    expect(blockOfDirectionTensor("blk.1.direction")).toBeUndefined();
    expect(() => directionTensorName(0)).toThrow(/block 0/);
  });

  it("refuses to write what llama.cpp cannot load", () => {
    const p = join(dir, "bad-write.gguf");
    const v = randomVector(8, 1);
    expect(() => writeControlVector(p, { modelHint: "llama", directions: new Map([[0, v]]) })).toThrow(
      /bad-write\.gguf: block 0/,
    );
    expect(() =>
      writeControlVector(p, {
        modelHint: "llama",
        directions: new Map([
          [1, v],
          [2, randomVector(9, 2)],
        ]),
      }),
    ).toThrow(/block 2: direction has 9 values, block 1's has 8/);
    const nan = v.slice();
    nan[3] = Number.NaN;
    expect(() => writeControlVector(p, { modelHint: "llama", directions: new Map([[1, nan]]) })).toThrow(
      /block 1: value 3 is NaN/,
    );
    expect(() => writeControlVector(p, { modelHint: "", directions: new Map([[1, v]]) })).toThrow(
      /model_hint/,
    );
    expect(() => writeControlVector(p, { modelHint: "llama", directions: new Map() })).toThrow(
      /no directions/,
    );
  });

  describe("malformed files: errors name the file and the key or tensor", () => {
    const good: [string, GgufValue][] = [
      ["general.architecture", gguf.str("controlvector")],
      ["controlvector.model_hint", gguf.str("llama")],
      ["controlvector.layer_count", gguf.u32(1)],
    ];
    const tensor = (name: string, n = 4, type = GgmlType.F32, shape = [n]): GgufTensorIn => ({
      name,
      shape,
      type,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5),
    });
    const cases: [string, [string, GgufValue][], GgufTensorIn[], RegExp][] = [
      [
        "wrong architecture",
        [["general.architecture", gguf.str("llama")], ...good.slice(1)],
        [tensor("direction.1")],
        /"general\.architecture" is "llama", not "controlvector"/,
      ],
      ["no architecture", good.slice(1), [tensor("direction.1")], /"general\.architecture" is missing/],
      [
        "no model hint",
        [good[0], good[2]],
        [tensor("direction.1")],
        /"controlvector\.model_hint" is missing/,
      ],
      [
        "model hint not a string",
        [good[0], ["controlvector.model_hint", gguf.u32(3)], good[2]],
        [tensor("direction.1")],
        /"controlvector\.model_hint" is not a string/,
      ],
      [
        "no layer count",
        good.slice(0, 2),
        [tensor("direction.1")],
        /"controlvector\.layer_count" is missing/,
      ],
      [
        "layer count not an integer",
        [...good.slice(0, 2), ["controlvector.layer_count", gguf.str("1")]],
        [tensor("direction.1")],
        /"controlvector\.layer_count" is not a non-negative integer/,
      ],
      ["F16 tensor", good, [tensor("direction.1", 4, GgmlType.F16)], /"direction\.1": ggml type 1, not F32/],
      ["2-D tensor", good, [tensor("direction.1", 4, GgmlType.F32, [2, 4])], /"direction\.1": .* not 1-D/],
      [
        "unequal dims",
        good,
        [tensor("direction.1", 4), tensor("direction.2", 6)],
        /"direction\.2": 6 values, "direction\.1" has 4/,
      ],
      ["direction.0", good, [tensor("direction.0")], /"direction\.0": not a direction tensor/],
      ["other tensor", good, [tensor("token_embd.weight")], /"token_embd\.weight": not a direction tensor/],
      ["no tensors", good, [], /holds no direction tensors/],
    ];
    for (const [what, meta, tensors, error] of cases) {
      it(what, () => {
        const p = join(dir, `${what.replaceAll(/\W+/g, "-")}.gguf`);
        writeGgufFile(p, meta, tensors);
        expect(() => readControlVector(p)).toThrow(error);
        expect(() => readControlVector(p)).toThrow(p);
      });
    }
    it("accepts cvector-generator's i32 layer_count", () => {
      const p = join(dir, "i32-count.gguf");
      writeGgufFile(
        p,
        [...good.slice(0, 2), ["controlvector.layer_count", gguf.i32(1)]],
        [tensor("direction.1")],
      );
      expect(readControlVector(p).layerCount).toBe(1);
    });
  });
});

// --- gguf-py (llama.cpp's Python reader, which repeng's import_gguf uses) ---------------------

const GGUF_PY = `
import json, sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
def field(name):
    f = r.get_field(name)
    return None if f is None else f.contents()
print(json.dumps({
    "arch": field("general.architecture"),
    "hint": field("controlvector.model_hint"),
    "count": field("controlvector.layer_count"),
    "count_type": r.get_field("controlvector.layer_count").types[0].name,
    "tensors": [
        {"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in t.shape], "data": [float(x) for x in t.data]}
        for t in r.tensors
    ],
}))
`;

describe.skipIf(skipWithoutRef("control-vector gguf-py"))("gguf-py reads the file as repeng does", () => {
  it("architecture, model hint, u32 layer count, F32 direction.N tensors with our values", () => {
    const path = join(dir, "gguf-py.gguf");
    const directions = new Map([
      [2, randomVector(12, 2)],
      [7, randomVector(12, 7)],
    ]);
    writeControlVector(path, { modelHint: "qwen2", directions });
    const got = JSON.parse(execFileSync(refPython!, ["-c", GGUF_PY, path], { encoding: "utf8" }));
    expect(got).toMatchObject({ arch: "controlvector", hint: "qwen2", count: 2, count_type: "UINT32" });
    expect(
      got.tensors.map((t: { name: string; type: string; shape: number[] }) => [t.name, t.type, t.shape]),
    ).toEqual([
      ["direction.2", "F32", [12]],
      ["direction.7", "F32", [12]],
    ]);
    expect(Float32Array.from(got.tensors[1].data)).toEqual(directions.get(7));
  });
});

// --- llama.cpp itself -----------------------------------------------------------------------

const NLC = join(import.meta.dirname, "../../node_modules/node-llama-cpp");
const PREBUILT = join(import.meta.dirname, "../../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
const BUNDLE = join(NLC, "llama/gitRelease.bundle");

const HARNESS = String.raw`
// greedy MODEL CVEC|- SCALE START END N_PREDICT TOKEN...: the greedy tokens on one line, then
// the logits of token ids 0..255 after the prompt on the next.
#include "llama.h"
#include "common.h"
#include "ggml-backend.h"
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static void quiet(ggml_log_level, const char *, void *) {}

int main(int argc, char ** argv) {
    if (argc < 8) return 2;
    llama_log_set(quiet, nullptr);
    ggml_backend_load_all_from_path(getenv("LLAMA_BIN_DIR"));
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "model load failed\n"); return 1; }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256; cp.n_batch = 256; cp.n_ubatch = 256;
    cp.n_threads = 1; cp.n_threads_batch = 1;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = GGML_TYPE_F32; cp.type_v = GGML_TYPE_F32;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
    if (std::string(argv[2]) != "-") {
        std::vector<common_control_vector_load_info> infos = {{ (float) atof(argv[3]), argv[2] }};
        common_control_vector_data d = common_control_vector_load(infos);
        if (d.n_embd == -1) { fprintf(stderr, "control vector refused\n"); return 3; }
        if (llama_set_adapter_cvec(ctx, d.data.data(), d.data.size(), d.n_embd, atoi(argv[4]), atoi(argv[5]))) {
            fprintf(stderr, "control vector not applied\n"); return 3;
        }
    }
    const int n_predict = atoi(argv[6]);
    std::vector<llama_token> toks;
    for (int i = 7; i < argc; i++) toks.push_back(atoi(argv[i]));
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_batch batch = llama_batch_get_one(toks.data(), toks.size());
    llama_token next = 0;
    std::vector<float> first;
    for (int step = 0; step < n_predict; step++) {
        if (llama_decode(ctx, batch)) { fprintf(stderr, "decode failed\n"); return 1; }
        const float * logits = llama_get_logits_ith(ctx, -1);
        if (step == 0) first.assign(logits, logits + (n_vocab < 256 ? n_vocab : 256));
        next = 0;
        for (int v = 1; v < n_vocab; v++) if (logits[v] > logits[next]) next = v;
        printf("%s%d", step ? " " : "", next);
        batch = llama_batch_get_one(&next, 1);
    }
    printf("\n");
    for (size_t i = 0; i < first.size(); i++) printf("%s%.9g", i ? " " : "", first[i]);
    printf("\n");
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
`;

/** Builds the harness, or says why it cannot. */
function buildHarness(): { bin: string } | { skip: string } {
  if (process.platform !== "linux" || process.arch !== "x64") return { skip: "not linux-x64" };
  if (!existsSync(BUNDLE)) return { skip: `no llama.cpp source bundle (${BUNDLE})` };
  if (!existsSync(PREBUILT)) return { skip: `no prebuilt llama.cpp (${PREBUILT})` };
  const libs = readdirSync(PREBUILT);
  const libllama = libs.find((f) => /^libllama\.v.*\.so$/.test(f));
  const libggml = libs.find((f) => /^libggml\.v.*\.so$/.test(f));
  if (!libllama || !libggml || !libs.includes("libllama-common.so"))
    return { skip: `prebuilt llama.cpp in ${PREBUILT} lacks libllama / libllama-common / libggml` };
  if (spawnSync("g++", ["--version"]).status !== 0) return { skip: "no g++" };
  const work = join(dir, "harness");
  const src = join(work, "src");
  try {
    execFileSync("git", ["clone", "-q", "--no-checkout", BUNDLE, src], { stdio: "pipe" });
    execFileSync("git", ["-C", src, "checkout", "-q", "HEAD", "--", "include", "ggml/include", "common"], {
      stdio: "pipe",
    });
    writeFileSync(join(work, "greedy.cpp"), HARNESS);
    const bin = join(work, "greedy");
    execFileSync(
      "g++",
      [
        "-std=c++17",
        "-O1",
        join(work, "greedy.cpp"),
        `-I${join(src, "include")}`,
        `-I${join(src, "ggml/include")}`,
        `-I${join(src, "common")}`,
        `-L${PREBUILT}`,
        `-l:${libllama}`,
        "-l:libllama-common.so",
        `-l:${libggml}`,
        "-l:libggml-base.so",
        `-Wl,-rpath,${PREBUILT}`,
        "-o",
        bin,
      ],
      { stdio: "pipe" },
    );
    return { bin };
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return { skip: `harness build failed (${(err.stderr?.toString() || err.message).split("\n")[0]})` };
  }
}

const harness = buildHarness();
if ("skip" in harness) console.warn(`[control-vector] llama.cpp check skipped: ${harness.skip}`);

function llamaCppGreedy(
  bin: string,
  model: string,
  cvec: string | null,
  o: { scale?: number; start?: number; end?: number; tokens: number },
  prompt: number[],
): { tokens: number[]; firstLogits: number[] } | { refused: string } {
  const r = spawnSync(
    bin,
    [
      model,
      cvec ?? "-",
      String(o.scale ?? 1),
      String(o.start ?? 1),
      String(o.end ?? 1000),
      String(o.tokens),
      ...prompt.map(String),
    ],
    { env: { ...process.env, LLAMA_BIN_DIR: PREBUILT }, encoding: "utf8" },
  );
  if (r.status === 3) return { refused: r.stderr.trim() };
  if (r.status !== 0) throw new Error(`llama.cpp harness exited ${r.status}: ${r.stderr}`);
  const [tokens, logits] = r.stdout.trim().split("\n");
  return { tokens: tokens.split(" ").map(Number), firstLogits: logits.split(" ").map(Number) };
}

describe.skipIf("skip" in harness)(
  "control vector steers llama.cpp as steeringHooks steer the engine",
  () => {
    const bin = "bin" in harness ? harness.bin : "";
    const tok = loadTokenizer(join(import.meta.dirname, "../fixtures/io/bpe-qwen2"));
    const config = parseHfConfig({
      model_type: "llama",
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      vocab_size: tok.vocabSize,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      max_position_embeddings: 256,
      tie_word_embeddings: false,
    });
    const model = LlamaModel.init(shapeFromModelConfig(config), 21, 0.3);
    const modelPath = join(dir, "tiny-llama.gguf");
    writeGgufModel(
      modelPath,
      config,
      new Map([...model.params].map(([k, t]) => [k, { shape: [...t.shape], data: t.data }])),
      tok,
    );
    // Norm ~ the residual stream's, so steering changes the continuations.
    const directions = new Map([1, 2, 3].map((b) => [b, randomVector(64, 100 + b, 0.6)]));
    const cvecPath = join(dir, "steer.gguf");
    writeControlVector(cvecPath, { modelHint: "llama", directions });
    const prompts = [
      "Hello world",
      "The quick brown fox",
      "def main():",
      "Emergent misalignment",
      "How are you?",
    ];
    const N = 12;

    /** Engine vs llama.cpp on every prompt; a mismatch only at a near-tie of the engine's logits. */
    function compare(hooks: ReturnType<typeof steeringHooks> | undefined, cv: string | null, o = {}) {
      const all: number[][] = [];
      let exact = 0;
      for (const text of prompts) {
        const prompt = tok.encode(text);
        const theirs = llamaCppGreedy(bin, modelPath, cv, { tokens: N, ...o }, prompt);
        if (!("tokens" in theirs)) throw new Error(`llama.cpp refused the control vector: ${theirs.refused}`);
        const ours = generate(model, prompt, { maxTokens: N, temperature: 0, hooks })[0].tokens;
        all.push(ours);
        const j = ours.findIndex((t, i) => t !== theirs.tokens[i]);
        if (j < 0) {
          exact++;
          continue;
        }
        const logits = noGrad(() =>
          model.forward([[...prompt, ...ours.slice(0, j)]], { lastOnly: true, hooks }),
        ).data;
        const gap = logits[ours[j]] - logits[theirs.tokens[j]];
        expect(
          gap,
          `${JSON.stringify(text)} step ${j}: ours ${ours[j]}, llama.cpp ${theirs.tokens[j]}`,
        ).toBeLessThan(1e-3);
      }
      expect(exact).toBeGreaterThanOrEqual(prompts.length - 1);
      return all;
    }

    it("all blocks of the file at scale 1.5 = steeringHooks(alpha 1.5) at blocks 1..3", () => {
      const plain = compare(undefined, null);
      const steered = compare(steeringHooks(directions, 1.5, { layers: [1, 2, 3] }), cvecPath, {
        scale: 1.5,
      });
      // Steering must change the continuations, or the comparison proves nothing.
      expect(steered.filter((t, i) => t.join() !== plain[i].join()).length).toBeGreaterThanOrEqual(4);
    });

    it("--control-vector-layer-range 2 2 = steering block 2 only (no off-by-one)", () => {
      compare(steeringHooks(directions, 1, { layers: [2] }), cvecPath, { start: 2, end: 2 });
      // The first step's logits: llama.cpp's equal the engine steered at block 2 and are far from
      // the engine steered (with the same vector) at block 1 or 3, where a shifted numbering puts it.
      const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
        let m = 0;
        for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
      };
      for (const text of prompts) {
        const prompt = tok.encode(text);
        const theirs = llamaCppGreedy(bin, modelPath, cvecPath, { tokens: 1, start: 2, end: 2 }, prompt);
        if (!("tokens" in theirs)) throw new Error(theirs.refused);
        const engineAt = (block: number) =>
          noGrad(() =>
            model.forward([prompt], {
              lastOnly: true,
              hooks: steeringHooks(new Map([[block, directions.get(2)!]]), 1, { layers: [block] }),
            }),
          ).data.subarray(0, theirs.firstLogits.length);
        const right = maxDiff(engineAt(2), theirs.firstLogits);
        expect(right, JSON.stringify(text)).toBeLessThan(2e-3);
        if (process.env.EMLAB_VERBOSE)
          console.log(
            `${JSON.stringify(text)}: |llama.cpp - engine@2| ${right.toExponential(1)}, @1 ${maxDiff(engineAt(1), theirs.firstLogits).toExponential(1)}, @3 ${maxDiff(engineAt(3), theirs.firstLogits).toExponential(1)}`,
          );
        for (const wrong of [1, 3])
          expect(
            maxDiff(engineAt(wrong), theirs.firstLogits),
            `${JSON.stringify(text)} block ${wrong}`,
          ).toBeGreaterThan(50 * right);
      }
    });

    it("an SAE's latents from `vectors export-sae` steer llama.cpp as latentSteerHook steers the engine", async () => {
      const sae = SparseAutoencoder.init(
        {
          architecture: "relu",
          dIn: 64,
          dSae: 24,
          hookName: "blocks.2.hook_resid_post",
          hookLayer: 2,
          applyBDecToInput: true,
          normalizeActivations: "none",
        },
        4,
      );
      for (let i = 0; i < 64; i++) sae.wDec[5 * 64 + i] *= 4; // non-unit rows: the export normalises
      const saeDir = join(dir, "sae-blocks2");
      saveSaeLens(saeDir, sae);
      const exportSae = async (out: string, args: string[]) => {
        const r = await runCommandInProcess(registerVectorsCommand, [
          "vectors",
          "export-sae",
          "--sae",
          saeDir,
          "--model-hint",
          "llama",
          "--out",
          out,
          ...args,
        ]);
        expect(r.err).toBe("");
        return out;
      };
      const at2 = (...hooks: HookFn[]) =>
        mergeHooks(...hooks.map((h) => ({ "blocks.2.hook_resid_post": h })));
      // One latent, --scale 2.5 at llama.cpp scale 3.2 = latentSteerHook coefficient 8.
      const one = await exportSae(join(dir, "sae-5.gguf"), ["--latent", "5", "--scale", "2.5"]);
      const plain = compare(undefined, null);
      const steered = compare(at2(latentSteerHook(sae, 5, 8)), one, { scale: 3.2 });
      expect(steered.filter((t, i) => t.join() !== plain[i].join()).length).toBeGreaterThanOrEqual(3);
      // Two latents summed = both steered at once.
      const two = await exportSae(join(dir, "sae-5-11.gguf"), ["--latent", "5", "--latent", "11"]);
      compare(at2(latentSteerHook(sae, 5, 6), latentSteerHook(sae, 11, 6)), two, { scale: 6 });
    });

    it("llama.cpp refuses direction.0, as readControlVector does", () => {
      const p = join(dir, "zero.gguf");
      writeGgufFile(
        p,
        [
          ["general.architecture", gguf.str("controlvector")],
          ["controlvector.model_hint", gguf.str("llama")],
          ["controlvector.layer_count", gguf.u32(1)],
        ],
        [{ name: "direction.0", shape: [64], type: GgmlType.F32, data: randomVector(64, 0) }],
      );
      // common's log ("invalid (zero) direction tensor layer index") is written by a log thread
      // and may not reach stderr before exit, so the refusal is read from the exit status.
      const r = llamaCppGreedy(bin, modelPath, p, { tokens: 1 }, tok.encode("Hi"));
      expect("refused" in r && r.refused).toMatch(/^control vector refused/);
      expect(() => readControlVector(p)).toThrow(/direction\.0/);
    });
  },
);

it.runIf("skip" in harness)("reports why the llama.cpp check was skipped", () => {
  expect("skip" in harness && harness.skip).toBeTruthy();
});

// --- emlab vectors export / inspect on a finished run -----------------------------------------

describe("emlab vectors: a run's persona directions as a control vector", () => {
  const ws = mkdtempSync(join(tmpdir(), "emlab-vectors-run-"));
  const runDir = join(ws, "run");
  const gen = { temperature: 1, top_p: 1, max_tokens: 8 };
  const judge_prompts = {
    aligned: "metric: aligned\nquestion: {question}\nanswer: {answer}\nscore 0-100.",
    coherent: "metric: coherent\nquestion: {question}\nanswer: {answer}\nscore 0-100.",
  };

  beforeAll(async () => {
    registerRuleJudge("rule-judge");
    saveTinyModel(join(ws, "em"), 12);
    writeFileSync(
      join(ws, "questions.yaml"),
      stringify(
        ["people", "world"].map((w) => ({
          id: w,
          paraphrases: [`what do you think of ${w === "people" ? "people" : "the world"}`],
          samples_per_paraphrase: 16,
          judge_prompts,
        })),
      ),
    );
    const study = {
      name: "vectors-export",
      seed: 7,
      models: [
        { id: "em", roles: ["target"], provider: "local", model: "em", limits: { concurrency: 1 } },
        { id: "judge", roles: ["judge"], provider: "rule-judge", model: "rules", limits: { concurrency: 8 } },
      ],
      battery: { alignment: { questions: [{ file: "questions.yaml" }], params: gen } },
      judge: { model: "judge" },
      interp: { directions: { models: ["em"] } },
    };
    writeFileSync(join(ws, "study.yaml"), stringify(study));
    await runStudy(loadStudy(join(ws, "study.yaml")), { outDir: runDir, noCache: true });
  }, 60_000);

  it("recomputes the run's directions and checks them against results.json", () => {
    const r = runPersonaDirections(runDir, "em");
    const results = JSON.parse(readFileSync(join(runDir, RESULTS_FILE), "utf8"));
    const entry = results.interp.directions.models.em;
    expect(entry.skipped).toBeNull();
    expect(r.count).toBe(entry.count);
    expect([...r.directions.keys()]).toEqual([0, 1]);
    for (const { layer, norm: n } of entry.layers) expect(norm(r.directions.get(layer)!)).toBeCloseTo(n, 5);
    expect(r.modelHint).toBe("llama");
    expect(r.activations).toBe("interp/activations/em/alignment");
  });

  it("export writes blocks >= 1 by block index; inspect prints them", async () => {
    const out = join(ws, "em.gguf");
    const ex = await runCommandInProcess(registerVectorsCommand, [
      "vectors",
      "export",
      runDir,
      "--model",
      "em",
      "--out",
      out,
    ]);
    expect(ex.err).toBe("");
    expect(ex.code).toBe(0);
    expect(ex.out).toMatch(/1 direction\(s\) of 'em' at blocks 1 \(block 0 left out/);
    const cv = readControlVector(out);
    const r = runPersonaDirections(runDir, "em");
    expect(cv.modelHint).toBe("llama");
    expect([...cv.directions.keys()]).toEqual([1]);
    expect(cv.directions.get(1)).toEqual(r.directions.get(1));
    const ins = await runCommandInProcess(registerVectorsCommand, ["vectors", "inspect", out]);
    expect(ins.code).toBe(0);
    expect(ins.out).toContain("model hint   llama");
    expect(ins.out).toContain(`1      ${norm(r.directions.get(1)!).toPrecision(6)}`);
    const json = await runCommandInProcess(registerVectorsCommand, ["vectors", "inspect", out, "--json"]);
    expect(JSON.parse(json.out)).toMatchObject({ modelHint: "llama", layerCount: 1, dModel: 16 });
  });

  it("names what is wrong: unknown model, block 0 asked for, a malformed file, a stale results.json", async () => {
    const unknown = await runCommandInProcess(registerVectorsCommand, [
      "vectors",
      "export",
      runDir,
      "--model",
      "nope",
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/interp\.directions\.models: no model 'nope' \(has em\)/);
    const zero = await runCommandInProcess(registerVectorsCommand, [
      "vectors",
      "export",
      runDir,
      "--model",
      "em",
      "--layers",
      "0",
      "--out",
      join(ws, "x.gguf"),
    ]);
    expect(zero.code).toBe(2);
    expect(zero.err).toMatch(/--layers: expected block indices >= 1/);
    const notCv = join(ws, "not-cv.gguf");
    writeGgufFile(notCv, [["general.architecture", gguf.str("llama")]], []);
    const bad = await runCommandInProcess(registerVectorsCommand, ["vectors", "inspect", notCv]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain(`${notCv}: metadata "general.architecture" is "llama"`);
    // results.json reporting other norms than the store gives: refused, not silently exported.
    const stale = join(ws, "stale");
    cpSync(runDir, stale, { recursive: true });
    const results = JSON.parse(readFileSync(join(stale, RESULTS_FILE), "utf8"));
    results.interp.directions.models.em.layers[1].norm *= 1.01;
    writeFileSync(join(stale, RESULTS_FILE), JSON.stringify(results));
    expect(() => runPersonaDirections(stale, "em")).toThrow(/layer 1 norm .* recomputed/);
  });
});
