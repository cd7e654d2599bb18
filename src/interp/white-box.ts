/**
 * What the probe, direction, steering and ablation sections need of a model they look inside,
 * whichever engine runs it: the embedded engine (provider `local`) or PyTorch + transformers
 * in the HF worker (provider `hf-worker`, docs/worker.md). Both read the residual stream at
 * the same TransformerLens hook names with the same answer-token rule, and take the same
 * hook edits (src/models/hook-edits.ts), so a study section gives the same figures on either.
 */
import type { HookEditInput } from "../models/hook-edits.ts";
import { LocalModelApi } from "../models/local.ts";
import type { ModelApi } from "../models/types.ts";
import {
  type ActivationDataset,
  type CollectOptions,
  type Conversation,
  collectActivations,
} from "./activations.ts";
import { editsToHooks, generationPositions, type PositionSpec } from "./interventions.ts";

export interface WhiteBoxModel {
  /** The plain model's chat API. */
  readonly api: ModelApi;
  /** Number of transformer blocks. */
  layers(): Promise<number>;
  /** The residual stream after each requested block, one row per conversation. */
  collect(
    conversations: readonly Conversation[],
    opts: Pick<CollectOptions, "layers" | "position">,
  ): Promise<ActivationDataset>;
  /** A study's `positions` setting as the edits' positions for generation on this model. */
  generationPositions(mode: "all" | "assistant" | "prompt"): Promise<PositionSpec>;
  /** A view whose completions run with these edits. */
  withEdits(edits: readonly HookEditInput[]): ModelApi;
}

/** The embedded engine behind a local model. */
export function localWhiteBox(api: LocalModelApi): WhiteBoxModel {
  return {
    api,
    layers: async () => api.engine().model.shape.layers,
    collect: async (conversations, opts) => collectActivations(api.engine(), conversations, opts),
    generationPositions: async (mode) => generationPositions(mode, api.engine()),
    withEdits: (edits) => api.withHooks(editsToHooks(edits)),
  };
}

/** What this file needs of the hf-worker provider (src/models/hf-worker.ts). */
export interface WorkerApi extends ModelApi {
  info(): Promise<{ n_layers: number; d_model: number; assistant_header_tokens: number }>;
  withEdits(edits: readonly HookEditInput[]): ModelApi;
  activations(
    inputs: readonly ({ token_ids: number[] } | { messages: Conversation["messages"]; answer: string })[],
    opts: { hooks: string[]; reduce: "all" | "last" | "mean" | "answer_mean" | "answer_last" },
  ): Promise<{
    tensors: Map<string, { shape: number[]; data: Float32Array }>;
    tokenCounts: number[];
    answerPositions: number[][];
  }>;
}

/** Conversations per activation request to the worker (it batches them 8 at a time itself). */
const WORKER_CHUNK = 32;

/** PyTorch + transformers behind an HF worker. */
export function workerWhiteBox(api: WorkerApi): WhiteBoxModel {
  return {
    api,
    layers: async () => (await api.info()).n_layers,
    collect: async (conversations, opts) => {
      const info = await api.info();
      const layers = opts.layers ?? Array.from({ length: info.n_layers }, (_, i) => i);
      for (const l of layers)
        if (!Number.isInteger(l) || l < 0 || l >= info.n_layers)
          throw new Error(
            `collectActivations: layer ${l} is not a block of this model (0..${info.n_layers - 1})`,
          );
      const position = opts.position ?? "answer_mean";
      const hooks = layers.map((l) => `blocks.${l}.hook_resid_post`);
      const rows = new Map<number, Float32Array[]>(layers.map((l) => [l, []]));
      const answerTokens: number[] = [];
      for (let c0 = 0; c0 < conversations.length; c0 += WORKER_CHUNK) {
        const chunk = conversations.slice(c0, c0 + WORKER_CHUNK);
        const r = await api.activations(
          chunk.map((c) => ({ messages: c.messages, answer: c.answer })),
          { hooks, reduce: position === "last" ? "answer_last" : "answer_mean" },
        );
        r.answerPositions.forEach((p, i) => {
          if (p.length === 0)
            throw new Error(
              `conversations[${c0 + i}]: the answer has no tokens (answer: ${JSON.stringify(chunk[i].answer)})`,
            );
          answerTokens.push(p.length);
        });
        layers.forEach((l, li) => {
          const t = r.tensors.get(hooks[li]);
          if (!t || t.shape[0] !== chunk.length || t.shape[1] !== info.d_model)
            throw new Error(
              `hf worker: activations of ${hooks[li]} have shape [${t?.shape.join(", ") ?? "missing"}], expected [${chunk.length}, ${info.d_model}]`,
            );
          for (let i = 0; i < chunk.length; i++)
            rows.get(l)!.push(t.data.slice(i * info.d_model, (i + 1) * info.d_model));
        });
      }
      return { position, layers: [...layers], dModel: info.d_model, rows, answerTokens };
    },
    generationPositions: async (mode) =>
      mode === "assistant" ? { lastPromptTokens: (await api.info()).assistant_header_tokens } : mode,
    withEdits: (edits) => api.withEdits(edits),
  };
}

/** The white-box view of a study model's API; null when its provider cannot be looked inside. */
export function whiteBoxOf(api: ModelApi): WhiteBoxModel | null {
  if (api instanceof LocalModelApi) return localWhiteBox(api);
  const w = api as Partial<WorkerApi>;
  if (
    api.capabilities.has("activations") &&
    api.capabilities.has("steering") &&
    typeof w.info === "function" &&
    typeof w.activations === "function" &&
    typeof w.withEdits === "function"
  )
    return workerWhiteBox(api as WorkerApi);
  return null;
}

/** Providers whose models the probe, direction, steering and ablation sections can read. */
export const WHITE_BOX_PROVIDERS: ReadonlySet<string> = new Set(["local", "hf-worker"]);
