import type { ListPage, ListRow, SampleFilter, SampleIndex } from "../runs/sample-index.ts";
import type { RunStore } from "../runs/store.ts";

export { ftsQuery, type ListRow, type SampleFilter } from "../runs/sample-index.ts";

/**
 * Server-side queries of the viewer: the filtered, paged sample list (over the side index)
 * and the full records of one sample / one prompt across models (over the run store).
 */

export class BadRequest extends Error {}

export class ViewerQueries {
  constructor(
    readonly index: SampleIndex,
    readonly store: RunStore,
  ) {}

  meta(): { models: string[]; experiments: string[]; metrics: string[]; total: number } {
    return this.index.meta();
  }

  /**
   * One page of the filtered list in index order. `after` (the last id seen) pages by key,
   * `offset` jumps anywhere (what the virtualised list needs when the scrollbar is dragged).
   */
  list(
    f: SampleFilter,
    page: ListPage,
  ): { total: number | null; offset: number; rows: ListRow[]; next_after: number | null } {
    return this.index.list(f, page);
  }

  /** Everything stored about one sample: prompt, completion, logprobs, judge replies. */
  sample(requestId: string, sampleIndex: number) {
    const request = this.store.getRequest(requestId);
    if (!request) return null;
    const completion = this.store.completions(requestId).find((c) => c.sample_index === sampleIndex);
    if (!completion) return null;
    const judgments = this.store.judgments({ requestId }).filter((j) => j.sample_index === sampleIndex);
    return {
      request: {
        id: request.id,
        model_id: request.model_id,
        experiment: request.experiment,
        item_id: request.item_id,
        status: request.status,
        n: request.n,
        seed: request.seed,
        messages: request.messages,
        params: request.params,
      },
      completion: {
        sample_index: completion.sample_index,
        text: completion.text,
        finish_reason: completion.finish_reason,
        logprobs: completion.logprobs,
        completion_tokens: completion.completion_tokens,
        latency_ms: completion.latency_ms,
        cached: completion.cached === 1,
      },
      judgments: judgments.map((j) => ({
        judge_model_id: j.judge_model_id,
        metric: j.metric,
        score: j.score,
        method: j.method,
        raw: j.raw,
        judge_request_id: j.judge_request_id,
      })),
      /** A judge request's item id names the answer it judged: `<request id>|<sample>|<metric>|<kind>`. */
      judged: judgedAnswer(request.experiment, request.item_id),
    };
  }

  /** The same prompt (experiment + item id) answered by every model, side by side. */
  compare(experiment: string, itemId: string) {
    const ids = this.index.requestIds(experiment, itemId);
    const columns = ids.map((rid) => {
      const r = this.store.getRequest(rid);
      if (!r) throw new Error(`request ${rid} is in the viewer index but not in the run store`);
      const judgments = this.store.judgments({ requestId: rid });
      return {
        model_id: r.model_id,
        request_id: r.id,
        messages: r.messages,
        samples: this.store.completions(rid).map((c) => ({
          sample_index: c.sample_index,
          text: c.text,
          finish_reason: c.finish_reason,
          judgments: judgments
            .filter((j) => j.sample_index === c.sample_index)
            .map((j) => ({
              judge_model_id: j.judge_model_id,
              metric: j.metric,
              score: j.score,
              method: j.method,
            })),
        })),
      };
    });
    return { experiment, item_id: itemId, models: columns };
  }
}

function judgedAnswer(experiment: string, itemId: string) {
  if (!experiment.endsWith(".judge")) return null;
  const parts = itemId.split("|");
  if (parts.length < 4) return null;
  const [kind, metric, sample] = [parts.pop(), parts.pop(), parts.pop()];
  const index = Number(sample);
  if (!Number.isInteger(index)) return null;
  return { request_id: parts.join("|"), sample_index: index, metric, kind };
}
