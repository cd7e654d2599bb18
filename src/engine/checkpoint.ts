import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors, writeSafetensors } from "./io/safetensors.ts";
import type { Trainer, TrainerState } from "./train.ts";

/**
 * A resumable training checkpoint: the trainable weights, AdamW's moments, the step,
 * the data cursor and the RNG state. The model architecture, base weights and adapter
 * layout are the caller's to rebuild the same way before `loadCheckpoint`.
 */
export function saveCheckpoint(trainer: Trainer, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  const moments = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of trainer.optimizer.params) {
    weights.set(name, { shape: [...t.shape], data: t.data });
    moments.set(`m.${name}`, { shape: [...t.shape], data: trainer.optimizer.m.get(name)! });
    moments.set(`v.${name}`, { shape: [...t.shape], data: trainer.optimizer.v.get(name)! });
  }
  writeSafetensors(join(dir, "trainable.safetensors"), weights);
  writeSafetensors(join(dir, "optimizer.safetensors"), moments);
  const state = { version: 1, ...trainer.state(), totalSteps: trainer.totalSteps };
  writeFileSync(join(dir, "trainer_state.json"), `${JSON.stringify(state, null, 2)}\n`);
}

export function loadCheckpoint(trainer: Trainer, dir: string): void {
  const stateFile = join(dir, "trainer_state.json");
  if (!existsSync(stateFile)) throw new Error(`${stateFile}: not found`);
  const state = JSON.parse(readFileSync(stateFile, "utf8")) as TrainerState & { version: number };
  if (state.version !== 1) throw new Error(`${stateFile}: unsupported checkpoint version ${state.version}`);
  const wFile = join(dir, "trainable.safetensors");
  const oFile = join(dir, "optimizer.safetensors");
  const weights = readSafetensors(wFile).tensors;
  const moments = readSafetensors(oFile).tensors;
  for (const [name, t] of trainer.optimizer.params) {
    const w = weights.get(name);
    if (!w) throw new Error(`${wFile}: missing tensor "${name}"`);
    if (w.data.length !== t.size)
      throw new Error(`${wFile}: tensor "${name}" has ${w.data.length} elements, expected ${t.size}`);
    t.data.set(w.data);
    for (const [k, buf] of [
      ["m", trainer.optimizer.m.get(name)!],
      ["v", trainer.optimizer.v.get(name)!],
    ] as const) {
      const src = moments.get(`${k}.${name}`);
      if (!src || src.data.length !== buf.length)
        throw new Error(`${oFile}: missing or mis-sized tensor "${k}.${name}"`);
      buf.set(src.data);
    }
  }
  trainer.restore(state);
}
