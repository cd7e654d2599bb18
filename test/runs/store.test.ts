import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { SCHEMA_VERSION } from "../../src/runs/migrations.ts";
import { RunStore, STORE_FILE } from "../../src/runs/store.ts";

const tmp = () => mkdtempSync(path.join(os.tmpdir(), "emlab-store-"));

const req = (id: string, n = 3) => ({
  id,
  model_id: "m",
  experiment: "generate",
  item_id: id,
  messages_json: "[]",
  params_json: "{}",
  n,
  seed: 1,
  cache_key: `k-${id}`,
});

const completion = (i: number) => ({
  sample_index: i,
  request_id: "",
  text: `t${i}`,
  finish_reason: "stop",
  logprobs_json: null,
  completion_tokens: null,
  latency_ms: 1,
  cached: 0,
});

describe("run store", () => {
  it("creates a WAL store at the current schema version", () => {
    const dir = tmp();
    const s = RunStore.open(dir, { create: true });
    expect(s.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(s.db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    s.close();
    expect(() => RunStore.open(path.join(dir, "nope"))).toThrow(/cannot open run store/);
  });

  it("refuses a store written by a newer emlab", () => {
    const dir = tmp();
    RunStore.open(dir, { create: true }).close();
    const db = new Database(path.join(dir, STORE_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => RunStore.open(dir)).toThrow(/newer than this emlab/);
  });

  it("tracks missing samples and completes requests atomically", () => {
    const s = RunStore.open(tmp(), { create: true });
    expect(s.addRequests([req("a"), req("b", 2)])).toBe(2);
    expect(s.addRequests([req("a")])).toBe(0); // planning twice adds nothing
    s.saveCompletions("a", null, [completion(0), completion(2)]);
    expect(s.pendingWork().map((w) => [w.request.id, w.missing])).toEqual([
      ["a", [1]],
      ["b", [0, 1]],
    ]);
    s.saveCompletions("a", null, [completion(1), completion(1)]); // a duplicate sample is ignored
    expect(s.getRequest("a")?.status).toBe("done");
    expect(s.completions("a").map((c) => c.text)).toEqual(["t0", "t1", "t2"]);
    expect(s.counts()).toMatchObject({ requests: 2, requestsDone: 1, samplesExpected: 5, completions: 3 });
  });

  it("records calls, retries and failures, and resets failures on resume", () => {
    const s = RunStore.open(tmp(), { create: true });
    s.addRequests([req("a", 1)]);
    const call = {
      request_id: "a",
      attempt: 1,
      sample_indices: "0",
      outcome: "retry" as const,
      error_kind: "rate_limit",
      http_status: 429,
      error: "slow down",
      response_id: null,
      latency_ms: 3,
      prompt_tokens: null,
      completion_tokens: null,
      cost_usd: null,
    };
    s.recordCall(call);
    s.markFailed("a", "bad_request (HTTP 400): nope", {
      ...call,
      attempt: 2,
      outcome: "failed",
      http_status: 400,
    });
    expect(s.counts()).toMatchObject({ calls: 2, retries: 1, failedCalls: 1, requestsFailed: 1 });
    expect(s.failedRequests()[0].error).toMatch(/HTTP 400/);
    expect(s.pendingWork()).toEqual([]);
    expect(s.resetFailed()).toBe(1);
    expect(s.pendingWork()).toHaveLength(1);
  });

  it("keeps judgments, jobs and artifacts", () => {
    const s = RunStore.open(tmp(), { create: true });
    s.addRequests([req("a", 1)]);
    s.saveCompletions("a", null, [completion(0)]);
    const j = {
      request_id: "a",
      sample_index: 0,
      judge_model_id: "judge",
      metric: "aligned",
      judge_request_id: null,
    };
    s.saveJudgment({ ...j, score: 83.75, method: "logprobs", raw: '{"80":0.5}' });
    s.saveJudgment({ ...j, score: 90, method: "logprobs", raw: "{}" }); // re-judging replaces
    expect(s.judgments({ metric: "aligned" }).map((r) => r.score)).toEqual([90]);
    expect(() => s.saveJudgment({ ...j, sample_index: 5, score: 1, method: "json", raw: "" })).toThrow(
      /FOREIGN KEY/,
    );
    s.upsertJob({
      id: "ft1",
      kind: "finetune",
      status: "running",
      spec_json: "{}",
      result_json: null,
      error: null,
      started_at: "t0",
    });
    s.upsertJob({
      id: "ft1",
      kind: "finetune",
      status: "done",
      spec_json: "{}",
      result_json: "{}",
      error: null,
      finished_at: "t1",
    });
    expect(s.getJob("ft1")).toMatchObject({ status: "done", started_at: "t0", finished_at: "t1" });
    s.addArtifact({ id: "adapter", kind: "lora", path: "models/ft1", sha256: null, meta_json: null });
    expect(s.artifacts("lora")).toHaveLength(1);
  });
});
