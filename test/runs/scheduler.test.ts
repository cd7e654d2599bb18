import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { TokenBucket } from "../../src/runs/limiter.ts";
import { backoffMs } from "../../src/runs/scheduler.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { TEST_KEYS_ENV, tmpDir, writeStudy } from "./support.ts";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null });
});
afterAll(async () => {
  await server?.close();
});

const env = TEST_KEYS_ENV;

async function run(o: Parameters<typeof writeStudy>[2], edit?: (yaml: string) => string) {
  const dir = tmpDir("sched");
  const file = writeStudy(dir, server, o);
  if (edit) {
    const fs = await import("node:fs");
    fs.writeFileSync(file, edit(fs.readFileSync(file, "utf8")));
  }
  const out = path.join(dir, "out");
  const summary = await runStudy(loadStudy(file), { outDir: out, noCache: true, env });
  return { summary, out };
}

describe("scheduler", () => {
  it("never has more requests in flight than the endpoint's concurrency", async () => {
    server.reset();
    server.setFaults({ slowRate: 1, slowMs: 20, rate429: 0, rate500: 0, rateDrop: 0 });
    const { summary } = await run({ prompts: 12, samples: 2, concurrency: 3 }, (y) =>
      y.replace(/ {2}- id: claude[\s\S]*?(?=battery:)/, ""),
    );
    expect(summary.samplesDone).toBe(24);
    expect(server.stats.maxInFlight).toBe(3);
  });

  it("waits at least retry-after before retrying a 429", async () => {
    server.reset();
    server.setFaults({ slowRate: 0, retryAfterS: 0.6 });
    server.queueFaults("429");
    const { summary, out } = await run({ prompts: 1, samples: 1, concurrency: 1 }, (y) =>
      y.replace(/ {2}- id: claude[\s\S]*?(?=battery:)/, ""),
    );
    expect(summary.samplesDone).toBe(1);
    const [first, second] = server.log.filter((e) => e.route.endsWith("/chat/completions"));
    expect(first.outcome).toBe("429");
    expect(second.outcome).toBe("ok");
    expect(second.at - (first.at + first.ms)).toBeGreaterThanOrEqual(590);
    const store = RunStore.open(out, { readonly: true });
    expect(store.calls().map((c) => [c.outcome, c.error_kind, c.http_status])).toEqual([
      ["retry", "rate_limit", 429],
      ["ok", null, null],
    ]);
    store.close();
  });

  it("times a slow request out, retries it, and gives up after max_retries with the reason", async () => {
    server.reset();
    server.setFaults({ slowRate: 1, slowMs: 1500 });
    const { summary, out } = await run({ prompts: 1, samples: 1, maxRetries: 1 }, (y) =>
      y.replace(/ {2}- id: claude[\s\S]*?(?=battery:)/, "").replace("timeout_s: 10", "timeout_s: 0.2"),
    );
    server.setFaults({ slowRate: 0 });
    expect(summary.failedRequests).toBe(1);
    const store = RunStore.open(out, { readonly: true });
    expect(store.calls().map((c) => [c.outcome, c.error_kind])).toEqual([
      ["retry", "timeout"],
      ["failed", "timeout"],
    ]);
    expect(store.failedRequests()[0].error).toMatch(/gave up after 2 attempts: timeout/);
    store.close();
  });

  it("stops cleanly when interrupted and resumes the rest", async () => {
    server.reset();
    server.setFaults({ slowRate: 1, slowMs: 30 });
    const dir = tmpDir("abort");
    const file = writeStudy(dir, server, { prompts: 40, samples: 1, concurrency: 2 });
    const out = path.join(dir, "out");
    const abort = new AbortController();
    // Interrupt once some samples are stored (not after a fixed time: CI machines are slow).
    const progress = {
      start() {},
      log() {},
      stop() {},
      update(st: { done: number }) {
        if (st.done >= 5) abort.abort();
      },
    };
    const first = await runStudy(loadStudy(file), {
      outDir: out,
      noCache: true,
      env,
      signal: abort.signal,
      progress,
    });
    expect(first.interrupted).toBe(true);
    expect(first.samplesDone).toBeGreaterThan(0);
    expect(first.samplesDone).toBeLessThan(80);
    server.setFaults({ slowRate: 0 });
    const second = await runStudy(loadStudy(file), { outDir: out, noCache: true, env, resume: true });
    expect(second.interrupted).toBe(false);
    expect(second.samplesDone).toBe(80);
  });

  it("backs off exponentially with jitter, never sooner than retry-after", () => {
    const limits = { backoff_base_s: 1, backoff_max_s: 8 } as Parameters<typeof backoffMs>[1];
    expect(backoffMs(1, limits, undefined, () => 0)).toBe(500);
    expect(backoffMs(1, limits, undefined, () => 1)).toBe(1000);
    expect(backoffMs(3, limits, undefined, () => 1)).toBe(4000);
    expect(backoffMs(10, limits, undefined, () => 1)).toBe(8000);
    expect(backoffMs(1, limits, 3000, () => 0)).toBe(3000);
    expect(backoffMs(5, limits, 1000, () => 1)).toBe(2000); // retry-after plus at most 1 s of jitter
  });

  it("rate-limits with a token bucket", async () => {
    const bucket = new TokenBucket(6000); // 100/s, holds 1,000
    const t0 = performance.now();
    await bucket.take(1000);
    expect(performance.now() - t0).toBeLessThan(50);
    await bucket.take(50);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(450);
  });
});

describe("scheduler guards", () => {
  it("counts a short answer as an attempt and gives up after max_retries", async () => {
    const { registerProvider } = await import("../../src/models/registry.ts");
    let calls = 0;
    registerProvider(
      "short-answers-test",
      () => ({
        provider: "short-answers-test",
        model: "m",
        capabilities: new Set(["n"] as const),
        async chat(req) {
          calls++;
          // One completion whatever n is: a misbehaving server.
          return {
            completions: [{ text: `only one of ${req.n}`, finishReason: "stop" }],
            usage: { promptTokens: 1, completionTokens: 1 },
          };
        },
      }),
      { replace: true },
    );
    const dir = tmpDir("short");
    const fs = await import("node:fs");
    const file = path.join(dir, "study.yaml");
    fs.writeFileSync(
      file,
      `name: short
models:
  - {id: s, provider: short-answers-test, model: m, limits: {max_retries: 2, backoff_base_s: 0.01}}
battery:
  generate: {prompts: {inline: [hello]}, samples: 4}
`,
    );
    const r = await runStudy(loadStudy(file), { outDir: path.join(dir, "out"), noCache: true, env: {} });
    expect(r.samplesDone).toBe(3); // attempt 1 got sample 0, retries 1-2 got samples 1-2, then it gave up
    expect(r.failedRequests).toBe(1);
    expect(calls).toBe(3);
  });

  it("lets one process at a time work on a run directory", async () => {
    server.reset();
    server.setFaults({ slowRate: 1, slowMs: 50, rate429: 0, rate500: 0, rateDrop: 0 });
    const dir = tmpDir("lock");
    const file = writeStudy(dir, server, { prompts: 5, samples: 1, concurrency: 1 });
    const out = path.join(dir, "out");
    const first = runStudy(loadStudy(file), { outDir: out, noCache: true, env });
    await new Promise((r) => setTimeout(r, 30));
    await expect(
      runStudy(loadStudy(file), { outDir: out, noCache: true, env, resume: true }),
    ).rejects.toThrow(/another emlab process/);
    expect((await first).samplesDone).toBe(10);
    server.setFaults({ slowRate: 0 });
  });
});
