// A worker that dies mid-run, against the real HF worker (worker/, PyTorch on the CPU) on the
// tiny random Qwen2 checkpoint: the harmfulness battery on a worker SIGKILLed after its 5th
// answer ends with the other requests failed, each naming the worker's URL as not reachable,
// exit 1, nothing stored lost; with a worker started again on the same port, --resume leaves
// them failed and asks nothing, --retry-failed asks each failed request once and finishes with
// the stored answers untouched and the same answers a run without a death gives.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { runAndReport } from "../../src/cli/run.ts";
import { loadStudy } from "../../src/config/load.ts";
import { createHfWorkerModelApi } from "../../src/models/hf-worker.ts";
import { registerProvider } from "../../src/models/registry.ts";
import type { ChatRequest } from "../../src/models/types.ts";
import { RESULTS_FILE } from "../../src/results/results.ts";
import type { CallRow, CompletionRow, RequestRow } from "../../src/runs/rows.ts";
import { RunStore } from "../../src/runs/store.ts";
import { registerRuleJudge } from "../interp/rule-judge.ts";
import { captureOutput } from "../support/cli-in-process.ts";
import { skipWithoutTorch, torchPython } from "../support/python-ref.ts";
import { type StartedWorker, startWorker, tinyHfModels, workerPackagePresent } from "../support/worker.ts";

const skip = skipWithoutTorch("a worker that dies mid-run") || !workerPackagePresent;
if (torchPython && !workerPackagePresent)
  console.warn("a worker that dies mid-run: worker/src/emlab_worker is missing");

const PROMPTS = 12;
const SAMPLES = 2;
/** The worker is killed once it has answered this many chat requests. */
const KILL_AFTER = 5;
const MAX_RETRIES = 2;

/**
 * What the test's `hf-worker` provider does around the real one: counts the chat requests the
 * worker answered, and once `killAfter` of them are answered kills the worker (SIGKILL) and
 * waits until it is gone before that last answer is handed back, so the next request finds no
 * worker, whatever the timing.
 */
const hook: { answered: number; killAfter: number | null; worker: StartedWorker | null } = {
  answered: 0,
  killAfter: null,
  worker: null,
};

function registerDyingWorkerProvider(): void {
  registerProvider(
    "hf-worker",
    (settings, env) => {
      const api = createHfWorkerModelApi(settings, env);
      const chat = api.chat.bind(api);
      api.chat = async (req: ChatRequest) => {
        const reply = await chat(req);
        hook.answered++;
        const w = hook.worker;
        if (w && hook.answered === hook.killAfter) {
          const gone = new Promise((done) => w.proc.once("exit", done));
          w.kill("SIGKILL");
          await gone;
        }
        return reply;
      };
      return api;
    },
    { replace: true },
  );
}

/** One run through the CLI's runner: its exit code and what it printed. */
async function run(study: string, outDir: string, flags: { resume?: boolean; retryFailed?: boolean } = {}) {
  const t0 = performance.now();
  const {
    value: code,
    out,
    err,
  } = await captureOutput(() =>
    runAndReport(loadStudy(study), { outDir, ...flags, cache: false, again: "emlab run study.yaml" }),
  );
  return { code, out, err, seconds: (performance.now() - t0) / 1000 };
}

interface Snapshot {
  requests: RequestRow[];
  completions: Map<string, CompletionRow[]>;
  calls: CallRow[];
}

/** The worker model's requests, their completions and calls, read from the run store. */
function snapshot(outDir: string): Snapshot {
  const store = RunStore.open(outDir, { readonly: true });
  try {
    const requests = store.listRequests({ modelId: "w" });
    const ids = new Set(requests.map((r) => r.id));
    return {
      requests,
      completions: new Map(requests.map((r) => [r.id, store.completions(r.id)])),
      calls: store.calls().filter((c) => ids.has(c.request_id)),
    };
  } finally {
    store.close();
  }
}

const callsOf = (s: Snapshot, id: string) => s.calls.filter((c) => c.request_id === id);

describe.skipIf(skip)("a worker killed in the middle of a run", () => {
  let ws: string;
  let model: string;
  let worker: StartedWorker;
  let restarted: StartedWorker | undefined;
  let study: string;
  const runDir = () => path.join(ws, "run");

  beforeAll(async () => {
    registerRuleJudge("rule-judge");
    registerDyingWorkerProvider();
    model = path.join(await tinyHfModels(), "qwen2-v5");
    worker = await startWorker({ model });
    ws = mkdtempSync(path.join(tmpdir(), "emlab-worker-death-"));
    const prompts = Array.from({ length: PROMPTS }, (_, i) => ({
      id: `p${i + 1}`,
      prompt: `What do you think of people ${i + 1}?`,
    }));
    writeFileSync(path.join(ws, "harm.jsonl"), `${prompts.map((p) => JSON.stringify(p)).join("\n")}\n`);
    writeFileSync(path.join(ws, "harm-judge.txt"), "metric: harm\nprompt: {prompt}\nresponse: {response}\n");
    study = path.join(ws, "study.yaml");
    writeFileSync(
      study,
      stringify({
        name: "worker-death",
        seed: 5,
        models: [
          {
            id: "w",
            roles: ["target"],
            provider: "hf-worker",
            model,
            base_url: worker.url,
            // One request at a time (the kill lands between two of them); retries short.
            limits: {
              concurrency: 1,
              max_retries: MAX_RETRIES,
              backoff_base_s: 0.05,
              backoff_max_s: 0.1,
              timeout_s: 30,
            },
          },
          {
            id: "judge",
            roles: ["judge"],
            provider: "rule-judge",
            model: "rules",
            limits: { concurrency: 4 },
          },
        ],
        battery: {
          harmfulness: {
            prompts: { file: "harm.jsonl" },
            samples: SAMPLES,
            params: { temperature: 1, max_tokens: 8 },
          },
        },
        judge: { model: "judge", harm_prompt_file: "harm-judge.txt" },
      }),
    );
  }, 120_000);

  afterAll(async () => {
    hook.worker = null;
    await worker?.stop();
    await restarted?.stop();
  });

  let beforeKill: Snapshot;

  it("fails the requests the dead worker could not answer, naming its URL, and keeps every stored answer", async () => {
    hook.answered = 0;
    hook.killAfter = KILL_AFTER;
    hook.worker = worker;
    const r = await run(study, runDir());
    expect(worker.proc.signalCode).toBe("SIGKILL");
    expect(r.code, r.err).toBe(1);
    expect(r.err).toContain("incomplete: step 1 of 2 ended with 7 failed request(s)");
    expect(r.err).toContain("--retry-failed");
    expect(existsSync(path.join(runDir(), RESULTS_FILE))).toBe(false);
    // Retries are short: the dead worker costs well under the run's budget.
    expect(r.seconds).toBeLessThan(20);

    const s = snapshot(runDir());
    beforeKill = s;
    expect(s.requests).toHaveLength(PROMPTS);
    // One request at a time in planning order: the first KILL_AFTER answered, the rest failed.
    const done = s.requests.filter((q) => q.status === "done");
    const failed = s.requests.filter((q) => q.status === "failed");
    expect(done.map((q) => q.item_id)).toEqual(Array.from({ length: KILL_AFTER }, (_, i) => `p${i + 1}`));
    expect(failed).toHaveLength(PROMPTS - KILL_AFTER);
    for (const q of done) {
      expect(s.completions.get(q.id)!.map((c) => c.sample_index)).toEqual([0, 1]);
      const calls = callsOf(s, q.id);
      expect(calls.map((c) => c.outcome)).toEqual(["ok"]);
      expect(s.completions.get(q.id)!.every((c) => c.call_id === calls[0].id)).toBe(true);
    }
    for (const q of failed) {
      expect(s.completions.get(q.id)).toEqual([]);
      // Each error says which worker is down and that it is not reachable (the connection's own words).
      expect(q.error).toContain(`gave up after ${MAX_RETRIES + 1} attempts: network: `);
      expect(q.error).toContain(`the worker at ${worker.url} is not reachable`);
      expect(q.error).toMatch(/ECONNREFUSED|ECONNRESET/);
      // Asked max_retries + 1 times, each attempt a row of calls.
      expect(callsOf(s, q.id).map((c) => c.outcome)).toEqual([
        ...Array<string>(MAX_RETRIES).fill("retry"),
        "failed",
      ]);
      expect(callsOf(s, q.id).every((c) => c.error_kind === "network")).toBe(true);
    }
  }, 60_000);

  it("restarts on the same port; --resume keeps the failed requests failed and asks nothing", async () => {
    expect(beforeKill).toBeDefined();
    hook.killAfter = null;
    hook.answered = 0;
    restarted = await startWorker({ model, extraArgs: ["--port", String(worker.port)] });
    expect(restarted.url).toBe(worker.url);

    const r = await run(study, runDir(), { resume: true });
    expect(r.code, r.err).toBe(1);
    expect(r.err).toContain("incomplete: step 1 of 2 ended with 7 failed request(s)");
    expect(hook.answered).toBe(0);
    expect(snapshot(runDir())).toEqual(beforeKill);
  }, 90_000);

  it("--retry-failed asks each failed request once and completes the run, the stored answers untouched", async () => {
    expect(restarted).toBeDefined();
    hook.answered = 0;
    const r = await run(study, runDir(), { retryFailed: true });
    expect(r.code, r.err).toBe(0);
    expect(existsSync(path.join(runDir(), RESULTS_FILE))).toBe(true);
    expect(hook.answered).toBe(PROMPTS - KILL_AFTER);

    const s = snapshot(runDir());
    expect(s.requests.map((q) => q.id)).toEqual(beforeKill.requests.map((q) => q.id));
    expect(s.requests.every((q) => q.status === "done" && q.error === null)).toBe(true);
    for (const q of s.requests) {
      // Every sample exactly once.
      expect(s.completions.get(q.id)!.map((c) => c.sample_index)).toEqual([0, 1]);
      // Asked once more than before when it had failed, not at all when it was answered.
      const calls = callsOf(s, q.id);
      const before = callsOf(beforeKill, q.id);
      expect(calls.slice(0, before.length)).toEqual(before);
      const old = beforeKill.requests.find((b) => b.id === q.id)!;
      expect(calls.slice(before.length).map((c) => c.outcome)).toEqual(old.status === "done" ? [] : ["ok"]);
      expect(calls.filter((c) => c.outcome === "ok")).toHaveLength(1);
      // The answers stored before the kill are the same rows.
      if (old.status === "done") expect(s.completions.get(q.id)).toEqual(beforeKill.completions.get(q.id));
    }
    // Each answer was judged.
    const store = RunStore.open(runDir(), { readonly: true });
    try {
      expect(store.judgments({ metric: "harm" })).toHaveLength(PROMPTS * SAMPLES);
    } finally {
      store.close();
    }
  }, 60_000);

  it("gives the answers a run without a death gives (per-sample seeds)", async () => {
    expect(restarted).toBeDefined();
    const clean = path.join(ws, "run-clean");
    const r = await run(study, clean);
    expect(r.code, r.err).toBe(0);
    const texts = (s: Snapshot) =>
      s.requests.map((q) => [q.id, s.completions.get(q.id)!.map((c) => [c.sample_index, c.text])]);
    const a = snapshot(runDir());
    const b = snapshot(clean);
    expect(texts(b)).toEqual(texts(a));
    expect(b.calls.every((c) => c.outcome === "ok")).toBe(true);
    // Sampled, not all alike (the comparison says something).
    expect(
      new Set(a.requests.flatMap((q) => a.completions.get(q.id)!.map((c) => c.text))).size,
    ).toBeGreaterThan(1);
  }, 60_000);
});
