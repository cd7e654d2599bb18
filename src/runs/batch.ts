import { randomBytes } from "node:crypto";
import { z } from "zod";
import { asBatchApi } from "../models/registry.ts";
import { type BatchApi, type BatchItem, type ChatResponse, ModelApiError } from "../models/types.ts";
import { type ResponseCache, sampleCacheKey } from "./cache.ts";
import { sleep } from "./limiter.ts";
import type { Redactor } from "./redact.ts";
import {
  callCost,
  callSeeds,
  completionRow,
  type ModelTarget,
  type ProgressSink,
  takeFromCache,
} from "./scheduler.ts";
import type { RunStore } from "./store.ts";

/**
 * Bulk work through a provider's batch API (OpenAI Batch, Anthropic Message Batches) for
 * models with `batch: true`. A submission is written to the store (job status "pending", with
 * a fresh tag) before the submit call, and its batch id as soon as the provider accepts it, so
 * a run killed later polls the same batch on resume instead of paying twice. When the submit
 * call itself was cut off (a kill, a lost reply), the provider is asked for the batch the
 * submission made (`BatchApi.findBatch`: OpenAI by the tag in its metadata, Anthropic by time
 * and size) and that batch is adopted; only when none is found are the items submitted again.
 * Cached samples are taken first; items the batch could not answer stay pending and go
 * through the direct path.
 */

const BatchSpecSchema = z.object({
  modelId: z.string(),
  /** "" while the submission has no id yet (job status "pending"). */
  batchId: z.string(),
  /** Absent in jobs written before submissions were tagged. */
  tag: z.string().optional(),
  submittedAt: z.string().optional(),
  samples: z.number().int().optional(),
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
      if (job.status !== "running" && job.status !== "pending") continue;
      const spec = BatchSpecSchema.parse(job.spec);
      if (spec.modelId !== target.modelId) continue;
      if (job.status === "pending") {
        // The submit call was cut off: adopt the batch it made, if the provider shows it.
        spec.batchId = (await findSubmitted(api, store, spec)) ?? "";
        if (!spec.batchId) {
          const why =
            "submission interrupted, and the provider shows no batch from it: its items are submitted again";
          store.upsertJob({ ...job, status: "failed", error: why, finished_at: new Date().toISOString() });
          opts.progress?.log(`${target.modelId}: ${why}`);
          continue;
        }
        markSubmitted(store, job.id, spec);
        opts.progress?.log(`${target.modelId}: found batch ${spec.batchId} of an interrupted submission`);
      }
      await collect(opts, target, spec, job.id);
    }
    if (opts.signal?.aborted) return cacheHits;
    const items: BatchItem[] = [];
    // The tag names this submission at the provider and prefixes its custom ids.
    const tag = `e${randomBytes(6).toString("hex")}`;
    const spec: BatchSpec = { modelId: target.modelId, batchId: "", tag, items: {} };
    let samples = 0;
    for (const { request, missing: pending } of store.pendingWork(opts.only)) {
      if (request.model_id !== target.modelId) continue;
      const missing = opts.cache
        ? takeFromCache(store, opts.cache, request, pending, opts.redactor)
        : pending;
      cacheHits += pending.length - missing.length;
      for (let s = 0; s < missing.length; s += target.maxN) {
        const indices = missing.slice(s, s + target.maxN);
        const customId = `${tag}_${Object.keys(spec.items).length}`;
        spec.items[customId] = { requestId: request.id, indices };
        samples += indices.length;
        items.push({
          customId,
          request: {
            messages: request.messages,
            params: request.params,
            n: indices.length,
            ...callSeeds(request, indices),
          },
        });
      }
    }
    if (items.length === 0) continue;
    spec.submittedAt = new Date().toISOString();
    spec.samples = samples;
    const jobId = `batch:${target.modelId}:${tag}`;
    const job = { id: jobId, kind: "batch", result: null, error: null };
    store.upsertJob({
      ...job,
      status: "pending",
      spec,
      started_at: spec.submittedAt,
    });
    try {
      spec.batchId = await api.submitBatch(items, { tag });
    } catch (e) {
      // The provider may have accepted the batch before the reply was lost.
      const found = await findSubmitted(api, store, spec).catch(() => undefined);
      if (!found) {
        const error = opts.redactor.redact(`submit failed: ${(e as Error).message}`);
        store.upsertJob({ ...job, status: "failed", spec, error });
        throw e;
      }
      spec.batchId = found;
    }
    markSubmitted(store, jobId, spec);
    opts.progress?.log(`${target.modelId}: submitted batch ${spec.batchId} (${items.length} items)`);
    await collect(opts, target, spec, jobId);
  }
  return cacheHits;
}

/** The batch a submission made, per the provider (undefined: none, ambiguous, or the API cannot tell). */
async function findSubmitted(api: BatchApi, store: RunStore, spec: BatchSpec): Promise<string | undefined> {
  if (!api.findBatch || !spec.tag || !spec.submittedAt || spec.samples === undefined) return undefined;
  const exclude = new Set<string>();
  for (const job of store.listJobs("batch")) {
    const other = BatchSpecSchema.parse(job.spec);
    if (other.batchId) exclude.add(other.batchId);
  }
  return api.findBatch({
    tag: spec.tag,
    since: new Date(spec.submittedAt),
    samples: spec.samples,
    exclude,
  });
}

function markSubmitted(store: RunStore, jobId: string, spec: BatchSpec): void {
  store.upsertJob({
    id: jobId,
    kind: "batch",
    status: "running",
    spec,
    result: null,
    error: null,
  });
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
    const answer = results.get(customId);
    // Redacted here, once, like the direct path's answers: nothing a server echoed reaches the store or cache.
    const r = answer && !(answer instanceof ModelApiError) ? opts.redactor.redactResponse(answer) : answer;
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
    spec,
    result: { status, ok, failed },
    error: status === "completed" ? null : `batch ended ${status}`,
    finished_at: new Date().toISOString(),
  });
  opts.progress?.log(`${target.modelId}: batch ${spec.batchId} ${status}: ${ok} answered, ${failed} not`);
}
