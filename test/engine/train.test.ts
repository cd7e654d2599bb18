import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { noGrad } from "../../src/engine/autograd.ts";
import { loadCheckpoint, saveCheckpoint } from "../../src/engine/checkpoint.ts";
import { makeShape } from "../../src/engine/config.ts";
import { readSafetensors } from "../../src/engine/io/safetensors.ts";
import { LlamaModel } from "../../src/engine/model.ts";
import { lrAt } from "../../src/engine/optim.ts";
import { addLora, loadAdapter, mergeLora, saveAdapter } from "../../src/engine/peft.ts";
import { loadModel } from "../../src/engine/pretrained.ts";
import { Rng } from "../../src/engine/rng.ts";
import { type TrainExample, Trainer } from "../../src/engine/train.ts";

const FIX = join(import.meta.dirname, "../fixtures/engine");

interface GoldenTrain {
  inputs: number[][];
  labels: number[][];
  hp: { lr: number; betas: [number, number]; eps: number; weight_decay: number; max_grad_norm: number };
  steps: { loss: number; grad_norm: number }[];
}

/** Golden (inputs, labels) as training examples: ids = inputs + last label, mask from labels. */
function examplesFrom(g: GoldenTrain, ids: number[][]): TrainExample[] {
  return ids.map((row, b) => ({
    ids: row,
    lossMask: [0, ...g.labels[b].map((l) => (l >= 0 ? 1 : 0))],
  }));
}

function fullIds(g: GoldenTrain, lastTokens: number[]): number[][] {
  return g.inputs.map((inp, b) => [...inp, lastTokens[b]]);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function trainerFor(model: LlamaModel, g: GoldenTrain, steps: number): Trainer {
  // The final label of each row is the last token; masked ones can be any id (0).
  const last = g.labels.map((row) => Math.max(0, row[row.length - 1]));
  return new Trainer(model, examplesFrom(g, fullIds(g, last)), {
    lr: g.hp.lr,
    betas: g.hp.betas,
    eps: g.hp.eps,
    weightDecay: g.hp.weight_decay,
    maxGradNorm: g.hp.max_grad_norm,
    batchSize: 2,
    steps,
    shuffle: false,
    minLrRatio: 1,
  });
}

describe("training matches torch", () => {
  it("LoRA (rsLoRA, q/v/down): two AdamW steps with clipping match torch to 1e-4", () => {
    const dir = join(FIX, "lora_gqa");
    const g: GoldenTrain = JSON.parse(readFileSync(join(dir, "golden_train.json"), "utf8"));
    const model = loadModel(join(FIX, "llama_gqa"));
    loadAdapter(model, dir);
    const trainer = trainerFor(model, g, 2);
    for (let s = 0; s < 2; s++) {
      const info = trainer.trainStep();
      expect(info.loss).toBeCloseTo(g.steps[s].loss, 4);
      expect(info.gradNorm).toBeCloseTo(g.steps[s].grad_norm, 3);
      const want = readSafetensors(join(dir, `after_step${s + 1}.safetensors`)).tensors;
      expect(want.size).toBe(model.adapters.size * 2);
      for (const [path, a] of model.adapters) {
        expect(maxDiff(a.A.data, want.get(`base_model.model.${path}.lora_A.weight`)!.data)).toBeLessThan(
          1e-4,
        );
        expect(maxDiff(a.B.data, want.get(`base_model.model.${path}.lora_B.weight`)!.data)).toBeLessThan(
          1e-4,
        );
      }
    }
    // The base stayed frozen.
    const base = loadModel(join(FIX, "llama_gqa"));
    for (const [n, t] of base.params) expect(maxDiff(model.param(n).data, t.data)).toBe(0);
  });

  it("full fine-tuning of a tied qwen2 model: one AdamW step matches torch to 1e-4", () => {
    const dir = join(FIX, "qwen2_bias_tied");
    const g: GoldenTrain = JSON.parse(readFileSync(join(dir, "golden_train.json"), "utf8"));
    const model = loadModel(dir);
    const info = trainerFor(model, g, 1).trainStep();
    expect(info.loss).toBeCloseTo(g.steps[0].loss, 4);
    expect(info.gradNorm).toBeCloseTo(g.steps[0].grad_norm, 3);
    const want = readSafetensors(join(dir, "after_full_step1.safetensors")).tensors;
    for (const [n, t] of model.params) expect(maxDiff(t.data, want.get(n)!.data)).toBeLessThan(1e-4);
  });
});

const tinyShape = makeShape({
  vocabSize: 32,
  hiddenSize: 16,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediateSize: 24,
});
function tinyData(n: number, len: number, seed: number): TrainExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const start = rng.int(32);
    // A learnable pattern: counting up mod 32; loss only on the second half.
    const ids = Array.from({ length: len }, (_, i) => (start + i) % 32);
    return { ids, lossMask: ids.map((_, i) => (i >= len / 2 ? 1 : 0)) };
  });
}

describe("trainer", () => {
  it("learns a pattern (loss falls) with warmup + cosine: full fine-tuning and LoRA on every target", () => {
    const mean = (xs: { loss: number }[]) => xs.reduce((a, s) => a + s.loss, 0) / xs.length;
    const full = LlamaModel.init(tinyShape, 1, 0.1);
    const info = new Trainer(full, tinyData(16, 12, 3), {
      lr: 3e-2,
      batchSize: 4,
      steps: 30,
      warmupSteps: 3,
    }).run();
    expect(info[0].lr).toBeCloseTo(1e-2, 8);
    expect(info[29].lr).toBeLessThan(1e-3);
    expect(mean(info.slice(-3))).toBeLessThan(mean(info.slice(0, 3)) * 0.3);

    const model = LlamaModel.init(tinyShape, 1, 0.1);
    addLora(model, {
      rank: 4,
      alpha: 8,
      targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
      dropout: 0.1,
      seed: 2,
    });
    const lora = new Trainer(model, tinyData(16, 12, 3), {
      lr: 3e-2,
      batchSize: 4,
      steps: 30,
      warmupSteps: 3,
    }).run();
    expect(mean(lora.slice(-5))).toBeLessThan(mean(lora.slice(0, 3)) * 0.8);
  });

  it("gradient accumulation equals one big batch", () => {
    const data = tinyData(8, 8, 4).map((e) => ({ ids: e.ids }));
    const run = (batchSize: number, gradAccum: number) => {
      const model = LlamaModel.init(tinyShape, 5, 0.1);
      new Trainer(model, data, {
        lr: 1e-2,
        batchSize,
        gradAccum,
        steps: 2,
        shuffle: false,
        weightDecay: 0.1,
      }).run();
      return model;
    };
    const a = run(4, 1);
    const b = run(2, 2);
    for (const [n, t] of a.params) expect(maxDiff(t.data, b.param(n).data)).toBeLessThan(2e-6);
  });

  it("checkpoints resume bit-exactly (weights, AdamW moments, step, data order, dropout RNG)", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-ckpt-"));
    try {
      const data = tinyData(10, 10, 6);
      const make = () => {
        const model = LlamaModel.init(tinyShape, 7, 0.1);
        addLora(model, { rank: 2, alpha: 4, targets: ["q_proj", "v_proj"], dropout: 0.2, seed: 8 });
        return {
          model,
          trainer: new Trainer(model, data, { lr: 1e-2, batchSize: 3, steps: 6, warmupSteps: 2, seed: 9 }),
        };
      };
      const straight = make();
      straight.trainer.run();
      const first = make();
      for (let i = 0; i < 3; i++) first.trainer.trainStep();
      saveCheckpoint(first.trainer, dir);
      const resumed = make();
      loadCheckpoint(resumed.trainer, dir);
      resumed.trainer.run();
      expect(resumed.trainer.losses).toEqual(straight.trainer.losses);
      for (const [path, a] of straight.model.adapters) {
        expect(Array.from(resumed.model.adapters.get(path)!.B.data)).toEqual(Array.from(a.B.data));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("PEFT adapters", () => {
  it("save → load round-trips, and merging into the base gives the same logits", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-peft-"));
    try {
      const model = LlamaModel.init(tinyShape, 11, 0.1);
      addLora(model, {
        rank: 3,
        alpha: 6,
        rslora: true,
        targets: ["q_proj", "down_proj"],
        layers: [1],
        seed: 3,
      });
      // Give B non-zero values so the adapter changes the output.
      const rng = new Rng(1);
      for (const a of model.adapters.values())
        for (let i = 0; i < a.B.size; i++) a.B.data[i] = rng.normal() * 0.2;
      expect([...model.adapters.keys()]).toEqual([
        "model.layers.1.self_attn.q_proj",
        "model.layers.1.mlp.down_proj",
      ]);
      const ids = [[1, 2, 3, 4, 5, 6]];
      const adapted = noGrad(() => model.forward(ids)).data;
      saveAdapter(model, dir, { baseModel: "tiny" });
      const names = [...readSafetensors(join(dir, "adapter_model.safetensors")).tensors.keys()].sort();
      expect(names).toContain("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
      expect(names).toContain("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
      const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
      expect(cfg).toMatchObject({
        r: 3,
        lora_alpha: 6,
        use_rslora: true,
        layers_to_transform: [1],
        peft_type: "LORA",
      });

      const fresh = LlamaModel.init(tinyShape, 11, 0.1);
      const plain = noGrad(() => fresh.forward(ids)).data;
      expect(maxDiff(plain, adapted)).toBeGreaterThan(1e-3);
      loadAdapter(fresh, dir);
      expect(maxDiff(noGrad(() => fresh.forward(ids)).data, adapted)).toBeLessThan(1e-6);
      mergeLora(fresh);
      expect(fresh.adapters.size).toBe(0);
      expect(maxDiff(noGrad(() => fresh.forward(ids)).data, adapted)).toBeLessThan(1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects adapters whose shapes do not fit the model, naming the tensor", () => {
    const model = loadModel(join(FIX, "llama_tied_gqa"));
    expect(() => loadAdapter(model, join(FIX, "lora_gqa"))).toThrow(
      /adapter_model\.safetensors: tensor "base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.weight" has shape/,
    );
  });
});

describe("lr schedule", () => {
  it("warms up linearly and decays by cosine to the floor", () => {
    const s = { peak: 1, warmupSteps: 4, totalSteps: 14, minRatio: 0.1 };
    expect(lrAt(0, s)).toBeCloseTo(0.25);
    expect(lrAt(3, s)).toBeCloseTo(1);
    expect(lrAt(4, s)).toBeCloseTo(1);
    expect(lrAt(9, s)).toBeCloseTo(0.1 + 0.9 * 0.5);
    expect(lrAt(14, s)).toBeCloseTo(0.1);
  });
});
