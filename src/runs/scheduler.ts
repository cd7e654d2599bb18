import type { z } from "zod";
import type { LimitsSchema, PriceSchema } from "../config/schema.ts";
import {
  type ChatResponse,
  type Completion,
  type ModelApi,
  ModelApiError,
  type Usage,
} from "../models/types.ts";
import { type ResponseCache, sampleCacheKey } from "./cache.ts";
import { deriveSeed } from "./canonical.ts";
import { sleep, TokenBucket } from "./limiter.ts";
import type { Redactor } from "./redact.ts";
import type { RequestRow } from "./rows.ts";
import type { NewCall, NewCompletion, RunStore } from "./store.ts";

type Limits = z.infer<typeof LimitsSchema>;
type Price = z.infer<typeof PriceSchema>;

/** Limits shared by every model that reaches the same endpoint with the same key. */
export class Endpoint {
  readonly concurrency: number;
  readonly rpm?: TokenBucket;
  readonly tpm?: TokenBucket;
  constructor(
    readonly id: string,
    limits: Pick<Limits, "concurrency" | "rpm" | "tpm">,
  ) {
    this.concurrency = limits.concurrency;
    if (limits.rpm) this.rpm = new TokenBucket(limits.rpm);
    if (limits.tpm) this.tpm = new TokenBucket(limits.tpm);
  }
}

/** Everything the scheduler needs to call one study model. */
export interface ModelTarget {
  modelId: string;
  api: ModelApi;
  endpoint: Endpoint;
  limits: Limits;
  price?: Price;
  /** Largest n sent in one call (1 when the provider has no native n). */
  maxN: number;
  /** Send this model's pending work through the provider's batch API first. */
  batch: boolean;
}

export interface ProgressState {
  done: number;
  total: number;
  failedRequests: number;
  retries: number;
  cacheHits: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

export interface ProgressSink {
  start(state: ProgressState): void;
  update(state: ProgressState): void;
  log(line: string): void;
  stop(): void;
}

export interface SchedulerOptions {
  store: RunStore;
  /** Only these request ids (the current plan); default: every pending request in the store. */
  only?: ReadonlySet<string>;
  targets: Map<string, ModelTarget>;
  cache?: ResponseCache;
  signal?: AbortSignal;
  redactor: Redactor;
  progress?: ProgressSink;
  /** For tests: replaces Math.random in backoff jitter. */
  random?: () => number;
}

export interface SchedulerResult {
  samplesTotal: number;
  samplesDone: number;
  failedRequests: number;
  /** Samples this invocation took from the response cache. */
  cacheHits: number;
  interrupted: boolean;
}

interface Task {
  request: RequestRow;
  indices: number[];
  target: ModelTarget;
  attempt: number;
  notBefore: number;
}

const estimateTokens = (req: RequestRow, n: number): number => {
  return Math.ceil(JSON.stringify(req.messages).length / 4) + n * (req.params.max_tokens ?? 256);
};

/**
 * The seeds of a call for some of a request's samples: sample i's seed is the request's
 * explicit `sample_seeds[i]` when it has them (interp's common random numbers), else derived
 * from the request seed and i; the call's `seed` is its first sample's.
 */
export function callSeeds(
  request: Pick<RequestRow, "id" | "n" | "seed" | "sample_seeds">,
  indices: readonly number[],
): { seed: number; sampleSeeds: number[] } {
  const explicit = request.sample_seeds;
  if (explicit && explicit.length !== request.n)
    throw new Error(`request ${request.id}: ${explicit.length} sample seeds for n = ${request.n}`);
  const sampleSeeds = indices.map((i) => (explicit ? explicit[i] : deriveSeed(request.seed ?? 0, i)));
  return { seed: sampleSeeds[0], sampleSeeds };
}

/** Seconds of backoff for a failed attempt: exponential with equal jitter, never below retry-after. */
export function backoffMs(
  attempt: number,
  limits: Limits,
  retryAfterMs: number | undefined,
  random: () => number,
): number {
  const exp = Math.min(limits.backoff_max_s, limits.backoff_base_s * 2 ** (attempt - 1)) * 1000;
  const jittered = exp / 2 + (random() * exp) / 2;
  return retryAfterMs !== undefined
    ? Math.max(retryAfterMs, Math.min(jittered, retryAfterMs + 1000))
    : jittered;
}

function toModelError(e: unknown, timedOut: boolean, interrupted: boolean): ModelApiError {
  if (interrupted) return new ModelApiError("aborted", "interrupted");
  if (timedOut) return new ModelApiError("timeout", "request timed out", { cause: e });
  if (e instanceof ModelApiError) return e;
  return new ModelApiError("other", e instanceof Error ? e.message : String(e), { cause: e });
}

/**
 * Runs every pending sample of the store: cache first, then the providers, under each
 * endpoint's concurrency and rate limits, with bounded retries. Each answer is committed
 * before its slot is released, so an interrupted run loses at most the calls in flight.
 */
export async function runPending(opts: SchedulerOptions): Promise<SchedulerResult> {
  const { store, cache, redactor } = opts;
  const random = opts.random ?? Math.random;
  const counts = store.counts();
  const state: ProgressState = {
    done: counts.completions,
    total: counts.samplesExpected,
    failedRequests: 0,
    retries: 0,
    cacheHits: 0,
    promptTokens: 0,
    completionTokens: 0,
    costUsd: 0,
  };
  opts.progress?.start({ ...state });

  // Queues per endpoint; a request's missing samples become one task per call.
  const queues = new Map<Endpoint, Task[]>();
  for (const { request, missing } of store.pendingWork(opts.only)) {
    const target = opts.targets.get(request.model_id);
    if (!target)
      throw new Error(`run store names model '${request.model_id}', which the study does not define`);
    const todo = cache ? takeFromCache(store, cache, request, missing, redactor) : missing;
    state.done += missing.length - todo.length;
    state.cacheHits += missing.length - todo.length;
    const queue = queues.get(target.endpoint) ?? [];
    queues.set(target.endpoint, queue);
    for (let s = 0; s < todo.length; s += target.maxN) {
      queue.push({ request, indices: todo.slice(s, s + target.maxN), target, attempt: 0, notBefore: 0 });
    }
  }
  opts.progress?.update({ ...state });

  const interrupted = () => opts.signal?.aborted ?? false;

  const execute = async (task: Task, queue: Task[]): Promise<void> => {
    const { request, indices, target } = task;
    const ep = target.endpoint;
    task.attempt++;
    const estimate = estimateTokens(request, indices.length);
    await ep.rpm?.take(1, opts.signal);
    await ep.tpm?.take(estimate, opts.signal);
    if (interrupted()) return;

    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let timedOut = false;
    const timeoutMs = target.limits.timeout_s * 1000;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, timeoutMs);
    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    let response: ChatResponse | undefined;
    let error: ModelApiError | undefined;
    try {
      // Redacted here, once: what a server echoed (a key in an answer) never reaches the store or cache.
      response = redactor.redactResponse(
        await target.api.chat({
          messages: request.messages,
          params: request.params,
          n: indices.length,
          ...callSeeds(request, indices),
          signal: ctl.signal,
          timeoutMs,
        }),
      );
    } catch (e) {
      error = toModelError(e, timedOut, interrupted());
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    }
    const latency = performance.now() - t0;
    // An answer that arrived is kept even after Ctrl-C (it is paid for); a call cut short is not.
    if (interrupted() && !response) return;

    const base = {
      request_id: request.id,
      attempt: task.attempt,
      sample_indices: indices.join(","),
      started_at: startedAt,
    };
    if (response) {
      const usage = response.usage;
      ep.tpm?.adjust(usage.promptTokens + usage.completionTokens - estimate);
      const cost = callCost(target.price, usage);
      const got = response.completions.slice(0, indices.length);
      const call: NewCall = {
        ...base,
        outcome: "ok",
        error_kind: null,
        http_status: null,
        error:
          got.length < indices.length
            ? `provider returned ${got.length} of ${indices.length} completions`
            : null,
        response_id: response.responseId ?? null,
        latency_ms: latency,
        prompt_tokens: usage.promptTokens,
        completion_tokens: usage.completionTokens,
        cost_usd: cost,
      };
      const perSampleTokens = indices.length === 1 ? usage.completionTokens : null;
      const rows = got.map((c, j) => completionRow(request.id, indices[j], c, latency, 0, perSampleTokens));
      store.saveCompletions(request.id, call, rows);
      cache?.putMany(got.map((c, j) => [sampleCacheKey(request.cache_key, indices[j]), c]));
      state.done += rows.length;
      state.promptTokens += usage.promptTokens;
      state.completionTokens += usage.completionTokens;
      state.costUsd += cost ?? 0;
      if (got.length < indices.length) {
        // A short answer is an attempt like a failed one: retried with backoff, then given up.
        const rest = indices.slice(got.length);
        if (task.attempt <= target.limits.max_retries) {
          state.retries++;
          const delay = backoffMs(task.attempt, target.limits, undefined, random);
          queue.push({ ...task, indices: rest, notBefore: performance.now() + delay });
        } else {
          const why = `gave up after ${task.attempt} attempts: provider returned fewer completions than asked for`;
          store.markFailed(request.id, why, null);
          state.failedRequests++;
          opts.progress?.log(`${target.modelId} ${request.experiment}/${request.item_id}: ${why}`);
        }
      }
      opts.progress?.update({ ...state });
      return;
    }

    const err = error!;
    const message = redactor.redact(
      `${err.kind}${err.status ? ` (HTTP ${err.status})` : ""}: ${err.message}`,
    );
    const retry = err.retryable && task.attempt <= target.limits.max_retries;
    const call: NewCall = {
      ...base,
      outcome: retry ? "retry" : "failed",
      error_kind: err.kind,
      http_status: err.status ?? null,
      error: message,
      response_id: null,
      latency_ms: latency,
      prompt_tokens: null,
      completion_tokens: null,
      cost_usd: null,
    };
    if (retry) {
      store.recordCall(call);
      state.retries++;
      task.notBefore = performance.now() + backoffMs(task.attempt, target.limits, err.retryAfterMs, random);
      queue.push(task);
    } else {
      const why = err.retryable ? `gave up after ${task.attempt} attempts: ${message}` : message;
      store.markFailed(request.id, why, call);
      state.failedRequests++;
      opts.progress?.log(`${target.modelId} ${request.experiment}/${request.item_id}: ${why}`);
    }
    opts.progress?.update({ ...state });
  };

  // One pool of workers per endpoint, as many as its concurrency. A worker takes the first
  // task whose backoff has elapsed, or sleeps until one has; a task is only re-queued by the
  // worker running it, which then loops, so no task is ever stranded.
  const workers: Promise<void>[] = [];
  for (const [ep, queue] of queues) {
    const worker = async () => {
      for (;;) {
        if (interrupted() || queue.length === 0) return;
        const t = performance.now();
        const idx = queue.findIndex((task) => task.notBefore <= t);
        if (idx < 0) {
          let wake = Number.POSITIVE_INFINITY;
          for (const task of queue) wake = Math.min(wake, task.notBefore);
          await sleep(wake - t, opts.signal);
          continue;
        }
        const [task] = queue.splice(idx, 1);
        await execute(task, queue);
      }
    };
    const n = Math.min(queue.length, ep.concurrency);
    for (let i = 0; i < n; i++) workers.push(worker());
  }
  await Promise.all(workers);
  opts.progress?.stop();

  const end = store.counts();
  return {
    samplesTotal: end.samplesExpected,
    samplesDone: end.completions,
    failedRequests: end.requestsFailed,
    cacheHits: state.cacheHits,
    interrupted: interrupted(),
  };
}

/**
 * Stores the samples of `request` that the cache already holds and returns the indices still
 * missing. Both the direct path and the batch path call it first, so a cached sample is never
 * paid for.
 */
export function takeFromCache(
  store: RunStore,
  cache: ResponseCache,
  request: RequestRow,
  missing: number[],
  redactor?: Redactor,
): number[] {
  const hits: NewCompletion[] = [];
  const rest: number[] = [];
  for (const i of missing) {
    const c = cache.get(sampleCacheKey(request.cache_key, i));
    // Entries are redacted when written; this covers ones written before keys were redacted in answers.
    if (c) hits.push(completionRow(request.id, i, redactor ? redactor.redactCompletion(c) : c, null, 1));
    else rest.push(i);
  }
  if (hits.length > 0) store.saveCompletions(request.id, null, hits);
  return rest;
}

/** USD for one call, when the study gives the model's price. */
export function callCost(price: Price | undefined, usage: Usage): number | null {
  return price
    ? (usage.promptTokens * price.input_per_mtok + usage.completionTokens * price.output_per_mtok) / 1e6
    : null;
}

/** A completion as the store keeps it. */
export function completionRow(
  requestId: string,
  index: number,
  c: Completion,
  latency: number | null,
  cached: 0 | 1,
  tokens: number | null = null,
): NewCompletion {
  return {
    request_id: requestId,
    sample_index: index,
    text: c.text,
    finish_reason: c.finishReason,
    logprobs: c.logprobs ?? null,
    completion_tokens: tokens,
    latency_ms: latency,
    cached,
  };
}
