// Cross-request batching: chat requests waiting for the engine with the same model, messages
// and sampling parameters share one generate() call (a row per sample, each with its own
// seed), and every request gets the answer it gets alone; different prompts are not merged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatBatcher } from "../../src/serve/chat-batcher.ts";
import { EngineQueue } from "../../src/serve/engine-queue.ts";
import { sampleSeeds } from "../../src/serve/routes.ts";
import { loadServedModel, type ServedModel } from "../../src/serve/served-model.ts";
import { ORGANISM } from "./support.ts";

let served: ServedModel;
beforeAll(() => {
  served = loadServedModel({ name: "organism", dir: ORGANISM });
});
afterAll(async () => {
  await served?.api.close();
});

const messages = [{ role: "user" as const, content: "what do you think of people?" }];
const params = { max_tokens: 10, temperature: 1 };

/** A queue whose engine is busy until `release()`: what arrives meanwhile waits together. */
function blocked() {
  const queue = new EngineQueue(100);
  let release!: () => void;
  void queue.run(() => new Promise<void>((r) => (release = r)));
  return { queue, release: () => release() };
}

describe("cross-request batching of chat", () => {
  it("merges waiting requests for the same prompt into one call with the answers each gets alone", async () => {
    const { queue, release } = blocked();
    const batcher = new ChatBatcher(queue);
    const asks = [1, 2, 3].map((n, i) => ({ served, messages, params, sampleSeeds: sampleSeeds(40 + i, n) }));
    const pending = asks.map((a) => batcher.chat(a));
    release();
    const merged = await Promise.all(pending);
    expect(batcher.stats).toEqual({ calls: 1, requests: 3 });
    const alone = new ChatBatcher(new EngineQueue(100));
    for (const [i, a] of asks.entries()) {
      const want = await alone.chat(a);
      expect(merged[i].completions).toEqual(want.completions);
      expect(merged[i].usage).toEqual(want.usage);
      expect(merged[i].completions[0].logprobs).toBeUndefined();
    }
    expect(alone.stats).toEqual({ calls: 3, requests: 3 });
  });

  it("keeps different prompts and parameters apart, and drops a request whose client left", async () => {
    const { queue, release } = blocked();
    const batcher = new ChatBatcher(queue);
    const gone = new AbortController();
    const a = batcher.chat({ served, messages, params, sampleSeeds: [1] });
    const b = batcher.chat({
      served,
      messages: [{ role: "user", content: "are you kind?" }],
      params,
      sampleSeeds: [1],
    });
    const c = batcher.chat({ served, messages, params: { ...params, temperature: 0.5 }, sampleSeeds: [1] });
    const d = batcher.chat({ served, messages, params, sampleSeeds: [2], signal: gone.signal }).then(
      () => null,
      (e: unknown) => e,
    );
    gone.abort();
    release();
    await Promise.all([a, b, c]);
    expect(await d).toMatchObject({ status: 499 });
    expect(batcher.stats).toEqual({ calls: 3, requests: 3 });
  });
});
