// emlab serve --steer with a llama.cpp / repeng control vector GGUF: read by its magic (any
// name), direction.N as block N's vector, so it steers exactly as the same vectors in
// safetensors do; and an SAE latent exported by `emlab vectors export-sae` steers the served
// model as latentSteerHook steers the local provider.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerVectorsCommand } from "../../src/cli/vectors.ts";
import { writeControlVector } from "../../src/engine/io/control-vector.ts";
import { gguf, writeGgufFile } from "../../src/engine/io/gguf-format.ts";
import { latentSteerHook } from "../../src/engine/sae/hooks.ts";
import { SparseAutoencoder } from "../../src/engine/sae/sae.ts";
import { saveSaeLens } from "../../src/engine/sae/saelens.ts";
import { LocalModelApi } from "../../src/models/local.ts";
import { sampleSeeds } from "../../src/serve/routes.ts";
import type { ServeEdits } from "../../src/serve/served-model.ts";
import { loadVectorFile, saveVectors } from "../../src/serve/vector-file.ts";
import { runCommandInProcess } from "../support/cli-in-process.ts";
import { refPython, skipWithoutRef } from "../support/python-ref.ts";
import { ORGANISM, serve } from "./support.ts";

let dir: string;
const D = 96; // the organism's hidden size
const vec = (seed: number) => Float32Array.from({ length: D }, (_, i) => Math.cos(seed * 3.3 + i * 0.7));
const byLayer = new Map([1, 2, 3].map((l) => [l, vec(l)]));
const messages = [{ role: "user" as const, content: "what do you think of the world?" }];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "emlab-serve-gguf-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The served completions for one request (n 3, seed 9) under these edits. */
async function servedTexts(edits: ServeEdits): Promise<(string | null)[]> {
  const { server, base } = await serve({ edits });
  try {
    const client = new OpenAI({ baseURL: base, apiKey: "none", maxRetries: 0 });
    const got = await client.chat.completions.create({
      model: "organism",
      messages,
      n: 3,
      seed: 9,
      max_tokens: 10,
    });
    return got.choices.map((c) => c.message.content);
  } finally {
    await server.close();
  }
}

describe("emlab serve --steer FILE.gguf", () => {
  it("reads a control vector by its magic: direction.N is block N", () => {
    const file = path.join(dir, "cv.gguf");
    writeControlVector(file, { modelHint: "llama", directions: byLayer });
    const vf = loadVectorFile(file);
    expect(vf.layers).toEqual([1, 2, 3]);
    expect(vf.dim).toBe(D);
    for (const [l, v] of byLayer) expect((vf.vectors as Map<number, Float32Array>).get(l)).toEqual(v);
    // Another name, same bytes: still a control vector, same sha256.
    const renamed = path.join(dir, "cv.bin");
    copyFileSync(file, renamed);
    expect(loadVectorFile(renamed).layers).toEqual([1, 2, 3]);
    expect(loadVectorFile(renamed).sha256).toBe(vf.sha256);
  });

  it("refuses what is not a control vector, naming the file", () => {
    const fake = path.join(dir, "fake.gguf");
    writeFileSync(fake, JSON.stringify([1, 2, 3]));
    expect(() => loadVectorFile(fake)).toThrow(`${fake}: not a GGUF file (no GGUF magic)`);
    const model = path.join(dir, "model.gguf");
    writeGgufFile(model, [["general.architecture", gguf.str("llama")]], []);
    expect(() => loadVectorFile(model)).toThrow(`${model}: metadata "general.architecture" is "llama"`);
    expect(readFileSync(model).subarray(0, 4).toString("latin1")).toBe("GGUF");
  });

  it("steers exactly as the same vectors in safetensors", async () => {
    const st = path.join(dir, "dirs.safetensors");
    saveVectors(st, byLayer);
    const cv = path.join(dir, "dirs.gguf");
    writeControlVector(cv, { modelHint: "llama", directions: byLayer });
    const steer = { layers: [1, 3], alpha: 5 };
    const fromSafetensors = await servedTexts({ steer: { file: st, ...steer } });
    const fromGguf = await servedTexts({ steer: { file: cv, ...steer } });
    const plain = await servedTexts({});
    expect(fromGguf).toEqual(fromSafetensors);
    expect(fromGguf).not.toEqual(plain);
  });

  it("an SAE latent from `emlab vectors export-sae` steers as latentSteerHook", async () => {
    const sae = SparseAutoencoder.init(
      {
        architecture: "topk",
        k: 4,
        dIn: D,
        dSae: 32,
        hookName: "blocks.2.hook_resid_post",
        hookLayer: 2,
        applyBDecToInput: true,
        normalizeActivations: "none",
      },
      5,
    );
    for (let i = 0; i < D; i++) sae.wDec[17 * D + i] *= 3; // a non-unit row
    const saeDir = path.join(dir, "sae");
    saveSaeLens(saeDir, sae);
    const out = path.join(dir, "latent-17.gguf");
    const ex = await runCommandInProcess(registerVectorsCommand, [
      "vectors",
      "export-sae",
      "--sae",
      saeDir,
      "--latent",
      "17",
      "--scale",
      "2",
      "--model-hint",
      "llama",
      "--out",
      out,
    ]);
    expect(ex.code).toBe(0);
    const served = await servedTexts({ steer: { file: out, layers: [2], alpha: 3 } });
    const local = new LocalModelApi({ provider: "local", model: ORGANISM });
    try {
      const req = { messages, params: { max_tokens: 10 }, n: 3, seed: 9, sampleSeeds: sampleSeeds(9, 3) };
      const steered = await local
        .withHooks({ "blocks.2.hook_resid_post": latentSteerHook(sae, 17, 6) })
        .chat(req);
      const plain = await local.chat(req);
      expect(served).toEqual(steered.completions.map((c) => c.text));
      expect(served).not.toEqual(plain.completions.map((c) => c.text));
    } finally {
      await local.close();
    }
  });

  // repeng's ControlVector.export_gguf, verbatim but for where the directions come from.
  const REPENG_EXPORT = `
import json, sys
import gguf, numpy as np
directions = {int(k): np.array(v, dtype=np.float32) for k, v in json.load(open(sys.argv[2])).items()}
arch = "controlvector"
writer = gguf.GGUFWriter(sys.argv[1], arch)
writer.add_string(f"{arch}.model_hint", "llama")
writer.add_uint32(f"{arch}.layer_count", len(directions))
for layer in directions.keys():
    writer.add_tensor(f"direction.{layer}", directions[layer])
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
`;

  it.skipIf(skipWithoutRef("repeng-layout control vector from gguf-py"))(
    "a file written as repeng writes it (gguf-py) steers as the same vectors in safetensors",
    async () => {
      const json = path.join(dir, "repeng-dirs.json");
      writeFileSync(json, JSON.stringify(Object.fromEntries([...byLayer].map(([l, v]) => [l, [...v]]))));
      const cv = path.join(dir, "repeng.gguf");
      execFileSync(refPython!, ["-c", REPENG_EXPORT, cv, json]);
      const vf = loadVectorFile(cv);
      expect(vf.layers).toEqual([1, 2, 3]);
      for (const [l, v] of byLayer) expect((vf.vectors as Map<number, Float32Array>).get(l)).toEqual(v);
      const st = path.join(dir, "repeng-dirs.safetensors");
      saveVectors(st, byLayer);
      const steer = { layers: [2], alpha: -4 };
      const fromGguf = await servedTexts({ steer: { file: cv, ...steer } });
      expect(fromGguf).toEqual(await servedTexts({ steer: { file: st, ...steer } }));
      expect(fromGguf).not.toEqual(await servedTexts({}));
    },
  );
});
