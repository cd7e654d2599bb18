// A 200 whose JSON body is cut off part-way is a transport fault: the run retries it with the
// usual bounded backoff, as it does a dropped connection, and ends with nothing failed.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// Through the public entry point, so a move of files inside src/ does not break this test.
import { loadStudy, RunStore, runStudy } from "../../src/index.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { tmpDir, writeStudy } from "./support.ts";

const OPENAI_KEY = "sk-emlab-truncated-openai-0123456789abcdef";
const ANTHROPIC_KEY = "sk-ant-emlab-truncated-9876543210fedcba";
const PROMPTS = 8;
const SAMPLES = 3;
const QUEUED = 4;

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null });
});
afterAll(async () => {
  await server?.close();
});

describe("a run against a server that cuts 200 bodies off", () => {
  it("retries every cut-off answer, completes every sample, and logs the retried attempts", async () => {
    server.reset();
    // The first requests are all cut off, then about three in ten at random (retries included).
    server.setFaults({ rateTruncate: 0.3, seed: 5 });
    server.queueFaults(...Array.from({ length: QUEUED }, () => "truncate" as const));
    const dir = tmpDir("truncated");
    const study = writeStudy(dir, server, {
      prompts: PROMPTS,
      samples: SAMPLES,
      concurrency: 4,
      maxRetries: 10,
    });
    const out = path.join(dir, "out");
    const summary = await runStudy(loadStudy(study), {
      outDir: out,
      noCache: true,
      env: { EMLAB_TEST_OPENAI_KEY: OPENAI_KEY, EMLAB_TEST_ANTHROPIC_KEY: ANTHROPIC_KEY },
    });

    // Two models, each PROMPTS × SAMPLES samples.
    const total = 2 * PROMPTS * SAMPLES;
    expect(summary).toMatchObject({ samplesTotal: total, samplesDone: total, failedRequests: 0 });
    expect(summary.interrupted).toBe(false);

    const generation = server.log.filter(
      (e) => e.route === "/v1/chat/completions" || e.route === "/v1/messages",
    );
    const truncated = generation.filter((e) => e.outcome === "truncated");
    expect(truncated.length).toBeGreaterThanOrEqual(QUEUED);
    expect(truncated.every((e) => e.status === 200)).toBe(true);
    expect(generation.every((e) => e.outcome === "ok" || e.outcome === "truncated")).toBe(true);

    const store = RunStore.open(out, { readonly: true });
    try {
      const counts = store.counts();
      expect(counts).toMatchObject({
        requestsFailed: 0,
        samplesExpected: total,
        completions: total,
        failedCalls: 0,
        retries: truncated.length,
      });
      expect(store.failedRequests()).toEqual([]);

      const calls = store.calls();
      // One call per HTTP request (the Anthropic target sends one sample per call).
      expect(calls).toHaveLength(generation.length);
      const retried = calls.filter((c) => c.outcome === "retry");
      expect(retried).toHaveLength(truncated.length);
      for (const c of retried) {
        expect(c.error_kind).toBe("network");
        expect(c.http_status).toBeNull();
        expect(c.error).toMatch(
          /^network: \w+ \([\w.-]+\): the response body was cut off or is not valid JSON \(/,
        );
        expect(c.error).not.toMatch(/unexpected error/);
        expect(c.error).not.toContain(OPENAI_KEY);
        expect(c.error).not.toContain(ANTHROPIC_KEY);
      }
      expect(calls.filter((c) => c.outcome !== "ok" && c.outcome !== "retry")).toEqual([]);
      // Both providers were cut off and retried (at 0.3 over the 24 Anthropic calls, missing
      // one of them has odds under 1 in 5,000).
      const retriedModels = new Set(retried.map((c) => store.getRequest(c.request_id)?.model_id));
      expect(retriedModels).toEqual(new Set(["gpt", "claude"]));

      // Per request and sample group: attempts 1, 2, ... k in order, all retries but the last, which is ok.
      const attempts = new Map<string, typeof calls>();
      for (const c of calls) {
        const key = `${c.request_id}|${c.sample_indices}`;
        attempts.set(key, [...(attempts.get(key) ?? []), c]);
      }
      let withRetries = 0;
      for (const [key, list] of attempts) {
        expect(
          list.map((c) => c.attempt),
          key,
        ).toEqual(list.map((_, i) => i + 1));
        expect(list.at(-1)?.outcome, key).toBe("ok");
        expect(list.slice(0, -1).every((c) => c.outcome === "retry")).toBe(true);
        if (list.length > 1) withRetries++;
      }
      expect(withRetries).toBeGreaterThanOrEqual(1);
      for (const r of store.listRequests()) {
        expect(r.status).toBe("done");
        expect(store.completions(r.id)).toHaveLength(r.n);
      }
    } finally {
      store.close();
    }
  });
});
