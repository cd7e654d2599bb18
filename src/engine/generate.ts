import { noGrad } from "./autograd.ts";
import { FastDecoder, fastDecodeUnsupported } from "./decode.ts";
import { type Hooks, resolveHooks } from "./hooks.ts";
import type { KvCache } from "./kv-cache.ts";
import { kernelMemory } from "./memory.ts";
import type { LlamaModel } from "./model.ts";
import { Rng } from "./rng.ts";
import { logSoftmax, type SamplingOptions, sampleToken, type TokenLogprob, topK } from "./sampling.ts";

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  /** Completions to draw from the same prompt (decoded as one batch). */
  n?: number;
  seed?: number;
  /**
   * One seed per sample (length n), overriding `seed`: sample i draws from its own stream,
   * so it is the same however a caller groups samples into calls.
   */
  seeds?: number[];
  /** Token ids that end a completion (e.g. EOS, <|im_end|>); not included in the text. */
  stopTokenIds?: number[];
  /** Strings that end a completion; the text is cut before the first match. Needs `decode`. */
  stop?: string[];
  decode?: (ids: number[]) => string;
  /** Record the chosen token's logprob (under the model's unmodified distribution). */
  logprobs?: boolean;
  /** Also record this many top alternatives per position. */
  topLogprobs?: number;
  hooks?: Hooks;
}

export interface GeneratedLogprob extends TokenLogprob {
  top?: TokenLogprob[];
}

export interface GeneratedSample {
  /** Generated ids (a stop token is not included). */
  tokens: number[];
  /** Decoded text, cut at a stop string (when `decode` was given). */
  text?: string;
  finishReason: "stop" | "length";
  logprobs?: GeneratedLogprob[];
}

/**
 * Autoregressive sampling with a KV cache: one prefill of the prompt, then one position
 * per step for all n samples at once. Each sample has its own RNG stream derived from
 * `seed`, so results do not depend on n's batching. With one sample, decode steps take
 * the fast path (decode.ts: no autograd, preallocated WASM buffers, hooks still applied)
 * whenever the model supports it; prefill always runs the general forward.
 */
export function generate(
  model: LlamaModel,
  prompt: readonly number[],
  opts: GenerateOptions,
): GeneratedSample[] {
  if (prompt.length === 0) throw new Error("generate needs a non-empty prompt");
  const n = opts.n ?? 1;
  const V = model.shape.vocabSize;
  const stopIds = new Set(opts.stopTokenIds ?? []);
  const stops = (opts.stop ?? []).filter((s) => s.length > 0);
  if (stops.length > 0 && !opts.decode) throw new Error("stop strings need a decode function");
  const wantTop = opts.topLogprobs ?? 0;
  const wantLogprobs = opts.logprobs === true || wantTop > 0;
  if (opts.seeds && opts.seeds.length !== n)
    throw new Error(`generate: ${opts.seeds.length} seeds for n = ${n}`);
  const master = new Rng(opts.seed ?? 0);
  const rngs = opts.seeds
    ? opts.seeds.map((s) => new Rng(s))
    : Array.from({ length: n }, () => new Rng(master.nextU32()));
  const samples: GeneratedSample[] = Array.from({ length: n }, () => ({
    tokens: [],
    finishReason: "length" as const,
    ...(wantLogprobs ? { logprobs: [] } : {}),
  }));
  if (opts.maxTokens <= 0) return samples.map((s) => (opts.decode ? { ...s, text: "" } : s));

  const memory = n === 1 && fastDecodeUnsupported(model) === null ? kernelMemory() : null;
  const capacity = prompt.length + opts.maxTokens;
  const caches: KvCache[] = [];
  let decoder: FastDecoder | null = null;
  try {
    return noGrad(() => {
      // In kernel memory when decoding fast: attention there reads the cache by address.
      const prefill = model.newCache(1, capacity, memory);
      caches.push(prefill);
      let logits = model.forward([prompt], { cache: prefill, lastOnly: true, hooks: opts.hooks }).data;
      // One prompt row prefilled, copied to n rows; every row's first logits are the same.
      const cache = n === 1 ? prefill : prefill.repeatRows(n);
      if (cache !== prefill) caches.push(cache);
      const hooks = memory === null ? null : resolveHooks(opts.hooks, model.shape.layers);
      let rowsInLogits = 1;
      const done = new Array<boolean>(n).fill(false);
      const next = new Array<number>(n).fill(0);
      for (let step = 0; step < opts.maxTokens; step++) {
        for (let i = 0; i < n; i++) {
          if (done[i]) continue;
          const off = (rowsInLogits === n ? i : 0) * V;
          const tok = sampleToken(logits, off, V, opts, rngs[i]);
          next[i] = tok;
          const s = samples[i];
          if (stopIds.has(tok)) {
            done[i] = true;
            s.finishReason = "stop";
            continue;
          }
          s.tokens.push(tok);
          if (wantLogprobs) {
            const lp = logSoftmax(logits, off, V);
            s.logprobs!.push({
              token: tok,
              logprob: lp[tok],
              ...(wantTop > 0 ? { top: topK(lp, wantTop) } : {}),
            });
          }
          if (stops.length > 0) {
            const text = opts.decode!(s.tokens);
            if (stops.some((st) => text.includes(st))) {
              done[i] = true;
              s.finishReason = "stop";
            }
          }
        }
        if (done.every(Boolean) || step === opts.maxTokens - 1) break;
        if (memory !== null) {
          // Built at the first decode step: a one-token generation never packs the weights.
          decoder ??= new FastDecoder(model, capacity);
          logits = decoder.step(next[0], cache, hooks);
        } else {
          // Finished rows keep decoding a placeholder so the batch stays rectangular.
          logits = model.forward(
            next.map((t) => [t]),
            { cache, hooks: opts.hooks },
          ).data;
          rowsInLogits = n;
        }
      }
      if (opts.decode) {
        for (const s of samples) {
          let text = opts.decode(s.tokens);
          let cut = text.length;
          for (const st of stops) {
            const at = text.indexOf(st);
            if (at >= 0 && at < cut) cut = at;
          }
          text = text.slice(0, cut);
          s.text = text;
        }
      }
      return samples;
    });
  } finally {
    (decoder as FastDecoder | null)?.dispose();
    for (const c of caches) c.dispose();
  }
}
