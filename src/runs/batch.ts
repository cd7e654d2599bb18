import { z } from "zod";
import { asBatchApi } from "../models/registry.ts";
import { type BatchItem, type ChatResponse, ModelApiError } from "../models/types.ts";
import { type ResponseCache, sampleCacheKey } from "./cache.ts";
import { deriveSeed } from "./canonical.ts";
import { sleep } from "./limiter.ts";
import type { Redactor } from "./redact.ts";
import { callCost, completionRow, type ModelTarget, type ProgressSink, takeFromCache } from "./scheduler.ts";
import type { RunStore } from "./store.ts";

/**
 * Bulk work through a provider's batch API (OpenAI Batch, Anthropic Message Batches) for
 * models with `batch: true`. The batch id is written to the store as soon as the provider
 * accepts the batch, so a run killed later polls the same batch on resume instead of paying
 * twice (a kill inside the submit call itself, before the id comes back, cannot be covered).
 * Cached samples are taken first; items the batch could not answer stay pending and go
 * through the direct path.
 */

const BatchSpecSchema = z.object({
  modelId: z.string(),
  batchId: z.string(),
  items: z.record(z.string(), z.object({ requestId: z.string(), indices: z.array(z.number().int()) })),
});
type BatchSpec = z.infer<typeof BatchSpecSchema>;

export interface BatchOptions {
  store: RunStore;
  targets: Map<string, ModelTarget>;
  cache?: ResponseCache;
  signal?: AbortSignal;
  redactor: Redactor;
  progress?: ProgressSink;
  /** Seconds between status polls (model option `batch_poll_s`, default 30). */
  pollSeconds?: (modelId: string) => number;
  /** Only these request ids (the current plan). */
  only?: ReadonlySet<string>;
}

/** Returns how many samples it took from the cache. */
export async function runBatches(opts: BatchOptions): Promise<number> {
  const { store } = opts;
  let cacheHits = 0;
  for (const target of opts.targets.values()) {
    if (!target.batch) continue;
    const api = asBatchApi(target.api)!; // checked with the study, before the run started
    // Resume: batches submitted by an earlier, interrupted invocation come first.
    for (const job of store.listJobs("batch")) {
      if (job.status !== "running") continue;
      const spec = BatchSpecSchema.parse(JSON.parse(job.spec_json));
      if (spec.modelId === target.modelId) await collect(opts, target, spec, job.id);
    }
    if (opts.signal?.aborted) return cacheHits;
    const items: BatchItem[] = [];
    const spec: BatchSpec = { modelId: target.modelId, batchId: "", items: {} };
    for (const { request, missing: pending } of store.pendingWork(opts.only)) {
      if (request.model_id !== target.modelId) continue;
      const missing = opts.cache ? takeFromCache(store, opts.cache, request, pending) : pending;
      cacheHits += pending.length - missing.length;
      for (let s = 0; s < missing.length; s += target.maxN) {
        const indices = missing.slice(s, s + target.maxN);
        const customId = `r${Object.keys(spec.items).length}`;
        spec.items[customId] = { requestId: request.id, indices };
        items.push({
          customId,
          request: {
            messages: JSON.parse(request.messages_json),
            params: JSON.parse(request.params_json),
            n: indices.length,
            seed: deriveSeed(request.seed ?? 0, indices[0]),
            sampleSeeds: indices.map((i) => deriveSeed(request.seed ?? 0, i)),
          },
        });
      }
    }
    if (items.length === 0) continue;
    spec.batchId = await api.submitBatch(items);
    const jobId = `batch:${target.modelId}:${spec.batchId}`;
    store.upsertJob({
      id: jobId,
      kind: "batch",
      status: "running",
      spec_json: JSON.stringify(spec),
      result_json: null,
      error: null,
      started_at: new Date().toISOString(),
    });
    opts.progress?.log(`${target.modelId}: submitted batch ${spec.batchId} (${items.length} items)`);
    await collect(opts, target, spec, jobId);
  }
  return cacheHits;
}

async function collect(
  opts: BatchOptions,
  target: ModelTarget,
  spec: BatchSpec,
  jobId: string,
): Promise<void> {
  const api = asBatchApi(target.api)!;
  const poll = (opts.pollSeconds?.(target.modelId) ?? 30) * 1000;
  let status = await api.batchStatus(spec.batchId);
  while (status === "validating" || status === "in_progress" || status === "finalizing") {
    await sleep(poll, opts.signal);
    if (opts.signal?.aborted) return; // the job stays "running": resume polls it again
    status = await api.batchStatus(spec.batchId);
  }
  // Expired and cancelled batches still hold the items they finished (and billed).
  let results = new Map<string, ChatResponse | ModelApiError>();
  if (status === "completed" || status === "expired" || status === "cancelled") {
    try {
      results = await api.batchResults(spec.batchId);
    } catch (e) {
      if (status === "completed") throw e;
    }
  }
  let ok = 0;
  let failed = 0;
  for (const [customId, item] of Object.entries(spec.items)) {
    const r = results.get(customId);
    const base = {
      request_id: item.requestId,
      attempt: 1,
      sample_indices: item.indices.join(","),
      latency_ms: null,
    };
    if (r && !(r instanceof ModelApiError)) {
      const got = r.completions.slice(0, item.indices.length);
      opts.store.saveCompletions(
        item.requestId,
        {
          ...base,
          outcome: "ok",
          error_kind: null,
          http_status: null,
          error: null,
          response_id: r.responseId ?? spec.batchId,
          prompt_tokens: r.usage.promptTokens,
          completion_tokens: r.usage.completionTokens,
          // At the study's price: batch discounts are the provider's, not modelled here.
          cost_usd: callCost(target.price, r.usage),
        },
        got.map((c, j) =>
          completionRow(
            item.requestId,
            item.indices[j],
            c,
            null,
            0,
            item.indices.length === 1 ? r.usage.completionTokens : null,
          ),
        ),
      );
      const request = opts.store.getRequest(item.requestId)!;
      opts.cache?.putMany(got.map((c, j) => [sampleCacheKey(request.cache_key, item.indices[j]), c]));
      ok++;
    } else {
      const err =
        r instanceof ModelApiError
          ? r
          : new ModelApiError("other", `batch ${spec.batchId} ended ${status} without this item`);
      const message = opts.redactor.redact(
        `${err.kind}${err.status ? ` (HTTP ${err.status})` : ""}: ${err.message}`,
      );
      const call = {
        ...base,
        error_kind: err.kind,
        http_status: err.status ?? null,
        error: message,
        response_id: null,
        prompt_tokens: null,
        completion_tokens: null,
        cost_usd: null,
      };
      // Retryable failures stay pending for the direct path; the others fail now.
      if (err.retryable || !r) opts.store.recordCall({ ...call, outcome: "retry" });
      else opts.store.markFailed(item.requestId, message, { ...call, outcome: "failed" });
      failed++;
    }
  }
  opts.store.upsertJob({
    id: jobId,
    kind: "batch",
    status: status === "completed" ? "done" : "failed",
    spec_json: JSON.stringify(spec),
    result_json: JSON.stringify({ status, ok, failed }),
    error: status === "completed" ? null : `batch ended ${status}`,
    finished_at: new Date().toISOString(),
  });
  opts.progress?.log(`${target.modelId}: batch ${spec.batchId} ${status}: ${ok} answered, ${failed} not`);
}
