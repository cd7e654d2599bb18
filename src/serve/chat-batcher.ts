/**
 * Cross-request batching for chat: requests waiting for the engine that ask the same model
 * the same messages with the same sampling parameters are decoded as one generate() call
 * (their samples become rows of one batch, each row with its own seed), since one call of
 * 16 rows decodes ~2.4x the tokens/s of 16 single-row calls on the organism (docs/
 * BENCHMARKS.md). Requests with different prompts are not merged: the KV cache keeps one
 * length for all rows, so rows of different prompt lengths cannot share a batch. Each
 * sample's seed is its own, so an answer is the same whether or not it was merged.
 */
import type { ChatMessage, ChatResponse, SamplingParams } from "../models/types.ts";
import type { EngineQueue } from "./engine-queue.ts";
import { ApiError } from "./errors.ts";
import type { ServedModel } from "./served-model.ts";

export interface ChatAsk {
  served: ServedModel;
  messages: ChatMessage[];
  params: SamplingParams;
  sampleSeeds: number[];
  signal?: AbortSignal;
}

interface Entry extends ChatAsk {
  resolve: (r: ChatResponse) => void;
  reject: (e: unknown) => void;
}

/** Most rows decoded in one call (more wait for the next). */
export const MAX_BATCH_ROWS = 64;

export class ChatBatcher {
  private readonly queue: EngineQueue;
  /** Groups waiting for the engine, by what they ask; a group leaves when its call starts. */
  private readonly waiting = new Map<string, Entry[]>();
  /** Calls made and requests they answered, for the bench and tests. */
  readonly stats = { calls: 0, requests: 0 };

  private readonly merge: boolean;

  /** merge false: one call per request (for measuring what merging gains). */
  constructor(queue: EngineQueue, opts: { merge?: boolean } = {}) {
    this.queue = queue;
    this.merge = opts.merge ?? true;
  }

  chat(ask: ChatAsk): Promise<ChatResponse> {
    const key = JSON.stringify([ask.served.name, ask.messages, ask.params]);
    return new Promise<ChatResponse>((resolve, reject) => {
      const entry: Entry = { ...ask, resolve, reject };
      const group = this.waiting.get(key);
      if (this.merge && group && rows(group) + ask.sampleSeeds.length <= MAX_BATCH_ROWS) {
        group.push(entry);
        return;
      }
      this.start(key, [entry]);
    });
  }

  private start(key: string, group: Entry[]): void {
    this.waiting.set(key, group);
    this.queue
      .run(async () => {
        if (this.waiting.get(key) === group) this.waiting.delete(key);
        await this.runGroup(group);
      })
      .catch((e) => {
        if (this.waiting.get(key) === group) this.waiting.delete(key);
        for (const g of group) g.reject(e);
      });
  }

  private async runGroup(group: Entry[]): Promise<void> {
    const live = group.filter((g) => {
      if (!g.signal?.aborted) return true;
      g.reject(new ApiError(499, "client closed the request", { code: "client_closed" }));
      return false;
    });
    if (live.length === 0) return;
    const first = live[0];
    const wantLogprobs = first.params.logprobs === true || first.params.top_logprobs !== undefined;
    const seeds = live.flatMap((g) => g.sampleSeeds);
    this.stats.calls++;
    this.stats.requests += live.length;
    let r: ChatResponse;
    try {
      r = await first.served.api.chat({
        messages: first.messages,
        // A merged call records logprobs to count each request's tokens; they are not returned unasked.
        params: live.length > 1 && !wantLogprobs ? { ...first.params, logprobs: true } : first.params,
        n: seeds.length,
        seed: seeds[0],
        sampleSeeds: seeds,
        // A merged call is not cut short for one client: the others still want it.
        signal: live.length === 1 ? first.signal : undefined,
      });
    } catch (e) {
      for (const g of live) g.reject(e);
      return;
    }
    if (live.length === 1) {
      first.resolve(r);
      return;
    }
    let at = 0;
    for (const g of live) {
      const mine = r.completions.slice(at, at + g.sampleSeeds.length);
      at += g.sampleSeeds.length;
      g.resolve({
        completions: wantLogprobs ? mine : mine.map(({ logprobs: _, ...c }) => c),
        usage: {
          promptTokens: r.usage.promptTokens,
          completionTokens: mine.reduce((a, c) => a + (c.logprobs?.length ?? 0), 0),
        },
      });
    }
  }
}

const rows = (group: Entry[]) => group.reduce((a, g) => a + g.sampleSeeds.length, 0);
