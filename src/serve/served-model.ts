/**
 * One model `emlab serve` answers for: a local model directory (plus an optional LoRA adapter)
 * behind the `local` provider's LocalModelApi, with the server's steering and ablation
 * applied as engine hooks through the same interp functions a study uses, so a served answer
 * is the local provider's answer for the same request.
 */
import type { Hooks } from "../engine/hooks.ts";
import { mergeHooks } from "../engine/hooks.ts";
import {
  ablationHooks,
  generationPositions,
  type LayerSpec,
  steeringHooks,
} from "../interp/interventions.ts";
import { type LocalEngine, LocalModelApi } from "../models/local.ts";
import { loadVectorFile, type VectorFile } from "./vector-file.ts";

export interface ServeModelSpec {
  /** The name clients send as `model`. */
  name: string;
  dir: string;
  /** A PEFT LoRA adapter directory, merged at load. */
  adapter?: string;
  /** A .jinja chat template used instead of the directory's. */
  chatTemplate?: string;
}

export type EditPositions = "all" | "assistant" | "prompt";

export interface ServeEdits {
  /** Adds alpha · v at `layers` (v as the file gives it, not normalised). */
  steer?: { file: string; layers: LayerSpec; alpha: number };
  /** Projects v out at `layers` (default: the file's layers, or every block for one vector). */
  ablate?: { file: string; layers?: LayerSpec };
  /** Where the edits apply in a generation (default all positions). */
  positions?: EditPositions;
}

/** What /v1/models reports of one active edit. */
export interface EditInfo {
  kind: "steer" | "ablate";
  file: string;
  sha256: string;
  layers: number[];
  alpha?: number;
  positions: EditPositions;
}

export interface ServedModel {
  name: string;
  dir: string;
  adapter: string | null;
  /** The local provider over the loaded model, with the edits as hooks. */
  api: LocalModelApi;
  engine: LocalEngine;
  /** The same hooks, for raw-text completions (which do not go through the chat template). */
  hooks: Hooks | undefined;
  edits: EditInfo[];
  /** When it was loaded (unix seconds), for /v1/models. */
  created: number;
}

function layersOf(spec: LayerSpec, nLayers: number): number[] {
  if (spec === "all") return Array.from({ length: nLayers }, (_, i) => i);
  return typeof spec === "number" ? [spec] : [...spec];
}

function checkVector(vf: VectorFile, layers: number[], engine: LocalEngine, what: string): void {
  const d = engine.model.shape.hiddenSize;
  if (vf.dim !== d)
    throw new Error(`${what} ${vf.file}: vectors have ${vf.dim} values; the model's hidden size is ${d}`);
  const n = engine.model.shape.layers;
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= n)
      throw new Error(`${what}: layer ${l} is not a block of this ${n}-block model`);
    if (vf.layers !== null && !vf.layers.includes(l))
      throw new Error(`${what} ${vf.file}: no vector for layer ${l} (it has ${vf.layers.join(", ")})`);
  }
}

export function loadServedModel(spec: ServeModelSpec, edits: ServeEdits = {}): ServedModel {
  const base = new LocalModelApi({
    provider: "local",
    model: spec.dir,
    options: {
      ...(spec.adapter ? { adapter: spec.adapter } : {}),
      ...(spec.chatTemplate ? { chat_template: spec.chatTemplate } : {}),
    },
  });
  const engine = base.engine();
  const nLayers = engine.model.shape.layers;
  const positionsMode = edits.positions ?? "all";
  const positions = generationPositions(positionsMode, engine);
  const sets: Hooks[] = [];
  const info: EditInfo[] = [];
  // Ablation first, then steering: a steered vector is not projected out again at the same point.
  if (edits.ablate) {
    const vf = loadVectorFile(edits.ablate.file);
    const layers = layersOf(edits.ablate.layers ?? vf.layers ?? "all", nLayers);
    checkVector(vf, layers, engine, "--ablate");
    sets.push(ablationHooks(vf.vectors, { layers, nLayers, positions }));
    info.push({ kind: "ablate", file: vf.file, sha256: vf.sha256, layers, positions: positionsMode });
  }
  if (edits.steer) {
    const vf = loadVectorFile(edits.steer.file);
    const layers = layersOf(edits.steer.layers, nLayers);
    checkVector(vf, layers, engine, "--steer");
    if (!Number.isFinite(edits.steer.alpha)) throw new Error("--alpha must be a finite number");
    sets.push(steeringHooks(vf.vectors, edits.steer.alpha, { layers, nLayers, positions }));
    info.push({
      kind: "steer",
      file: vf.file,
      sha256: vf.sha256,
      layers,
      alpha: edits.steer.alpha,
      positions: positionsMode,
    });
  }
  const hooks = sets.length > 0 ? mergeHooks(...sets) : undefined;
  return {
    name: spec.name,
    dir: spec.dir,
    adapter: spec.adapter ?? null,
    api: hooks ? base.withHooks(hooks) : base,
    engine,
    hooks,
    edits: info,
    created: Math.floor(Date.now() / 1000),
  };
}
