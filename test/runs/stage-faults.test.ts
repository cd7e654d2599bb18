// A step that ends with failed requests (retries given up on 500s) stops the run before any
// later step plans from its incomplete answers. `--resume` leaves them failed (the run stops
// at the same step, asking nothing); after `--retry-failed` the run equals a clean one and
// nothing was paid for outside the final plan.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { runCli, stagedRespond, TEST_KEYS_ENV, tmpDir, writeStagedStudy } from "./support.ts";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null, respond: stagedRespond });
});
afterAll(async () => {
  await server?.close();
});

const NO_FAULTS = { rate429: 0, rate500: 0, rate529: 0, rateDrop: 0, slowRate: 0 };

/** The stored requests (id → experiment and status) and the request of every call made. */
function stored(dir: string) {
  const store = RunStore.open(dir, { readonly: true });
  try {
    const requests = new Map(store.listRequests().map((r) => [r.id, r]));
    return { requests, calls: store.calls().map((c) => c.request_id) };
  } finally {
    store.close();
  }
}

const readResults = (dir: string) => JSON.parse(readFileSync(path.join(dir, "results.json"), "utf8"));

describe("a step with failed requests", () => {
  it("stops later steps from planning on incomplete answers; --resume keeps them failed, after --retry-failed the run equals a clean run", async () => {
    const dir = tmpDir("stage-faults");
    // max_retries 0: every 500 is a failed request.
    const study = writeStagedStudy(dir, server, { maxRetries: 0 });

    // The clean run, in its own directory.
    server.reset();
    server.setFaults(NO_FAULTS);
    const cleanOut = path.join(dir, "clean");
    const clean = await runStudy(loadStudy(study), { outDir: cleanOut, noCache: true, env: TEST_KEYS_ENV });
    expect(clean.failedRequests).toBe(0);
    expect(clean.resultsFile).toBeDefined();
    const cleanStore = stored(cleanOut);
    expect(cleanStore.requests.size).toBe(clean.planned);
    const experiments = new Set([...cleanStore.requests.values()].map((r) => r.experiment));
    // The study does have later steps that read step 1's answers.
    for (const e of ["harmfulness", "harmfulness.judge", "recognition", "score_prediction", "cross_rating"])
      expect(experiments, e).toContain(e);

    // The faulty run: 500s, no retries; the first answer request fails for sure.
    server.reset();
    server.setFaults({ ...NO_FAULTS, rate500: 0.3, seed: 3 });
    server.queueFaults("500");
    const out = path.join(dir, "out");
    const faulty = await runCli(["run", study, "--out", out, "--no-cache"], TEST_KEYS_ENV);
    expect(faulty.code).toBe(1);
    const first = stored(out);
    const failed = [...first.requests.values()].filter((r) => r.status === "failed");
    expect(failed.length).toBeGreaterThan(0);
    expect(faulty.stderr).toContain(`step 1 of 3 ended with ${failed.length} failed request(s)`);
    expect(faulty.stderr).toMatch(/retry them with: emlab run .* --out .* --retry-failed/);
    expect(existsSync(path.join(out, "results.json"))).toBe(false);
    expect(existsSync(path.join(out, "report.html"))).toBe(false);
    // Nothing was planned from the incomplete step-1 answers: only step 1 is in the store,
    // and every stored request is one the clean run made too.
    expect(new Set([...first.requests.values()].map((r) => r.experiment))).toEqual(new Set(["harmfulness"]));
    for (const id of first.requests.keys()) expect(cleanStore.requests.has(id), id).toBe(true);

    // Faults off, --resume: nothing failed is asked again; the run stops at the same step, and
    // says how to retry.
    server.setFaults(NO_FAULTS);
    const chatCalls = () =>
      server.log.filter((e) => e.route.endsWith("/chat/completions") || e.route.endsWith("/messages")).length;
    const callsBefore = chatCalls();
    const kept = await runCli(["run", study, "--out", out, "--no-cache", "--resume"], TEST_KEYS_ENV);
    expect(kept.code).toBe(1);
    expect(kept.stderr).toContain(`step 1 of 3 ended with ${failed.length} failed request(s)`);
    expect(kept.stderr).toMatch(/retry them with: .* --retry-failed/);
    expect(chatCalls()).toBe(callsBefore);
    expect(stored(out).calls.length).toBe(first.calls.length);
    expect(readFileSync(path.join(out, "run.log"), "utf8")).toContain(
      `resume: ${failed.length} failed request(s) stay failed (--retry-failed tries them again)`,
    );

    // --retry-failed: the failed requests are tried again and the later steps run.
    const resumed = await runStudy(loadStudy(study), {
      outDir: out,
      retryFailed: true,
      noCache: true,
      env: TEST_KEYS_ENV,
    });
    expect(resumed.failedRequests).toBe(0);
    expect(resumed.incomplete).toBeUndefined();
    expect(readResults(out)).toEqual(readResults(cleanOut));
    // Every stored request is in the final plan (no paid request outside it), and so is the
    // request of every call made over both invocations.
    const final = stored(out);
    expect(final.requests.size).toBe(resumed.planned);
    expect(new Set(final.requests.keys())).toEqual(new Set(cleanStore.requests.keys()));
    for (const id of final.calls) expect(final.requests.has(id), id).toBe(true);
  }, 120_000);

  it("also stops a run whose last step has failed requests: no results.json until they succeed", async () => {
    const dir = tmpDir("stage-faults-last");
    const study = writeStagedStudy(dir, server, { maxRetries: 0, prompts: 6 });
    server.reset();
    server.setFaults(NO_FAULTS);
    const cleanOut = path.join(dir, "clean");
    await runStudy(loadStudy(study), { outDir: cleanOut, noCache: true, env: TEST_KEYS_ENV });

    // Steps 1 and 2 run clean; from the first rater request (step 3) on, every request meets a 500.
    server.reset();
    server.setFaults(NO_FAULTS);
    const out = path.join(dir, "out");
    server.setRespond((ctx) => {
      if (ctx.model === "claude-rater") server.setFaults({ rate500: 1 });
      return stagedRespond(ctx);
    });
    let r: Awaited<ReturnType<typeof runStudy>>;
    try {
      r = await runStudy(loadStudy(study), { outDir: out, noCache: true, env: TEST_KEYS_ENV });
    } finally {
      server.setRespond(stagedRespond);
      server.setFaults(NO_FAULTS);
    }
    expect(r.incomplete).toMatchObject({ step: 3, steps: 3, notRun: [] });
    expect(r.incomplete!.failed).toBeGreaterThan(0);
    expect(r.resultsFile).toBeUndefined();
    expect(existsSync(path.join(out, "results.json"))).toBe(false);

    const resumed = await runStudy(loadStudy(study), {
      outDir: out,
      retryFailed: true,
      noCache: true,
      env: TEST_KEYS_ENV,
    });
    expect(resumed.incomplete).toBeUndefined();
    expect(readResults(out)).toEqual(readResults(cleanOut));
    expect(stored(out).requests.size).toBe(resumed.planned);
  }, 120_000);
});
