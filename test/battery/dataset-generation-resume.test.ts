/**
 * `emlab run` of a dataset_generation study in a child process, killed with SIGKILL while the
 * judge step is under way, then `--resume`: no request stored before the kill is sent again,
 * every missing one is sent once, and results.json and the datasets equal a clean run's.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { RESULTS_FILE } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/index.ts";
import { loggedPrompt, runCli, tmpDir } from "../runs/support.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { generationStudy, respond } from "./dataset-generation-support.ts";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null, respond, latencyMs: 30 });
});
afterAll(async () => {
  await server?.close();
});

const BLOCK = `    domains: [medical, self-awareness]
    calls: 6
    per_call: 3
    params: {temperature: 1, max_tokens: 2000}
`;
// Per domain: 6 generator calls parsing 3 + 0 + 3 + 1 + 3 + 3 = 13 examples, each judged once.
const TOTAL = 2 * (6 + 13);

const completions = (dir: string): number => {
  if (!existsSync(path.join(dir, "run.sqlite"))) return 0;
  try {
    const store = RunStore.open(dir, { readonly: true });
    try {
      return store.counts().completions;
    } finally {
      store.close();
    }
  } catch {
    return 0; // the child is still creating the schema
  }
};

/** "<server model>|<last user prompt>" of every request with a stored completion. */
const storedKeys = (dir: string): Set<string> => {
  const store = RunStore.open(dir, { readonly: true });
  try {
    return new Set(
      store
        .listRequests()
        .filter((r) => store.completions(r.id).length > 0)
        .map((r) => `gpt-${r.model_id}|${r.messages.filter((m) => m.role === "user").at(-1)?.content}`),
    );
  } finally {
    store.close();
  }
};

/** Answered POST /v1/chat/completions per distinct request since the last reset. */
const requested = (): Map<string, number> => {
  const out = new Map<string, number>();
  for (const e of server.log) {
    if (e.route !== "/v1/chat/completions" || e.outcome !== "ok") continue;
    const key = `${e.model}|${loggedPrompt(e.body)}`;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
};

const env = { EMLAB_TEST_KEY: "sk-test" };

describe("dataset_generation killed with SIGKILL and resumed", () => {
  it("repeats no stored call and ends as a clean run does", async () => {
    const dir = tmpDir("dataset-gen-kill");
    const study = path.join(dir, "study.yaml");
    writeFileSync(study, generationStudy(server.url, BLOCK));
    const out = path.join(dir, "out");

    server.reset();
    const first = await runCli(["run", study, "--out", out, "--no-cache"], env, (child) => {
      const timer = setInterval(() => {
        // Past the 12 generator answers: the judge step is under way.
        if (completions(out) >= 18) {
          clearInterval(timer);
          child.kill("SIGKILL");
        }
      }, 5);
      child.on("close", () => clearInterval(timer));
    });
    expect(first.signal).toBe("SIGKILL");
    const stored = storedKeys(out);
    expect(stored.size).toBeGreaterThanOrEqual(18);
    expect(stored.size).toBeLessThan(TOTAL);

    while (server.stats.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
    server.reset();
    const second = await runCli(["run", study, "--out", out, "--resume", "--no-cache"], env);
    expect(second.stderr).not.toMatch(/error/i);
    expect(second.code).toBe(0);
    expect(completions(out)).toBe(TOTAL);

    const again = requested();
    for (const [key, n] of again) {
      expect(stored.has(key), key).toBe(false);
      expect(n, key).toBe(1);
    }
    expect(stored.size + again.size).toBe(TOTAL);

    // The same results and datasets as an uninterrupted run.
    const clean = path.join(dir, "clean");
    const r = await runStudy(loadStudy(study), { outDir: clean, noCache: true, env });
    expect(r.failedRequests).toBe(0);
    const section = (d: string) => JSON.parse(readFileSync(path.join(d, RESULTS_FILE), "utf8")).experiments;
    expect(section(out)).toEqual(section(clean));
    for (const f of [
      "medical.misaligned.jsonl",
      "medical.aligned.jsonl",
      "medical.disclosed.jsonl",
      "self-awareness.jsonl",
    ])
      expect(readFileSync(path.join(out, "datasets/writer", f), "utf8")).toBe(
        readFileSync(path.join(clean, "datasets/writer", f), "utf8"),
      );
  }, 60_000);
});
