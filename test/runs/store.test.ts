import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SCHEMA_VERSION } from "../../src/runs/migrations.ts";
import { RunStore } from "../../src/runs/store.ts";
import { withStoreFile } from "../support/store-file.ts";

const tmp = () => mkdtempSync(path.join(os.tmpdir(), "emlab-store-"));

const req = (id: string, n = 3) => ({
  id,
  model_id: "m",
  experiment: "generate",
  item_id: id,
  messages: [],
  params: {},
  n,
  seed: 1,
  cache_key: `k-${id}`,
});

const completion = (i: number) => ({
  sample_index: i,
  request_id: "",
  text: `t${i}`,
  finish_reason: "stop",
  logprobs: null,
  completion_tokens: null,
  latency_ms: 1,
  cached: 0,
});

describe("run store", () => {
  it("creates a WAL store at the current schema version", () => {
    const dir = tmp();
    RunStore.open(dir, { create: true }).close();
    withStoreFile(dir, (db) => {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    });
    expect(() => RunStore.open(path.join(dir, "nope"))).toThrow(/cannot open run store/);
  });

  it("refuses a store written by a newer emlab", () => {
    const dir = tmp();
    RunStore.open(dir, { create: true }).close();
    withStoreFile(dir, (db) => db.pragma(`user_version = ${SCHEMA_VERSION + 1}`));
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
      spec: { plan: "ft1" },
      result: null,
      error: null,
      started_at: "t0",
    });
    s.upsertJob({
      id: "ft1",
      kind: "finetune",
      status: "done",
      spec: { plan: "ft1" },
      result: { loss: 0.5 },
      error: null,
      finished_at: "t1",
    });
    expect(s.getJob("ft1")).toMatchObject({
      status: "done",
      spec: { plan: "ft1" },
      result: { loss: 0.5 },
      started_at: "t0",
      finished_at: "t1",
    });
    s.addArtifact({ id: "adapter", kind: "lora", path: "models/ft1", sha256: null, meta: null });
    s.addArtifact({ id: "acts", kind: "interp", path: "interp/a", sha256: null, meta: { layers: [1, 2] } });
    expect(s.artifacts("lora")).toMatchObject([{ id: "adapter", meta: null }]);
    expect(s.artifacts("interp")).toMatchObject([{ id: "acts", meta: { layers: [1, 2] } }]);
  });

  it("hands out requests, completions, models and the study decoded", () => {
    const s = RunStore.open(tmp(), { create: true });
    const messages = [
      { role: "system" as const, content: "be brief" },
      { role: "user" as const, content: "hi" },
    ];
    s.addRequests([{ ...req("a", 1), messages, params: { temperature: 0.5, max_tokens: 9, stop: ["\n"] } }]);
    const logprobs = [{ token: "x", logprob: -0.5, top: [{ token: "x", logprob: -0.5 }] }];
    s.saveCompletions("a", null, [{ ...completion(0), logprobs }]);
    expect(s.getRequest("a")).toMatchObject({
      messages,
      params: { temperature: 0.5, max_tokens: 9, stop: ["\n"] },
    });
    expect(s.listRequests()[0].messages).toEqual(messages);
    expect(s.pendingWork()).toEqual([]);
    expect(s.completions("a")[0].logprobs).toEqual(logprobs);
    s.upsertModel({ id: "m", provider: "openai", model: "gpt", roles: ["target", "judge"] });
    expect(s.models()).toEqual([
      { id: "m", provider: "openai", model: "gpt", base_url: null, roles: ["target", "judge"] },
    ]);
    s.setStudy({
      name: "st",
      config: { name: "st", seed: 1 },
      config_hash: "h",
      source_path: "s.yaml",
      source_text: "",
    });
    expect(s.getStudy()).toMatchObject({ name: "st", config: { name: "st", seed: 1 } });
    expect([...s.samples()]).toEqual([
      {
        request_id: "a",
        model_id: "m",
        experiment: "generate",
        item_id: "a",
        sample_index: 0,
        text: "t0",
        messages,
      },
    ]);
  });

  it("names the table, row and column of a stored value that does not decode", () => {
    const dir = tmp();
    const s = RunStore.open(dir, { create: true });
    s.addRequests([req("a", 1), req("b", 1)]);
    s.saveCompletions("a", null, [completion(0)]);
    withStoreFile(dir, (db) => {
      db.prepare("UPDATE requests SET messages_json = '[{\"role\": \"user\"' WHERE id = 'a'").run();
      db.prepare(`UPDATE requests SET params_json = '{"temperature": "hot"}' WHERE id = 'b'`).run();
      db.prepare("UPDATE completions SET logprobs_json = 'nope' WHERE request_id = 'a'").run();
    });
    expect(() => s.getRequest("a")).toThrow(
      /run\.sqlite: requests row id="a", column messages_json: not valid JSON/,
    );
    expect(() => s.getRequest("b")).toThrow(/requests row id="b", column params_json at temperature: /);
    expect(() => s.completions("a")).toThrow(
      /completions row request_id="a", sample_index=0, column logprobs_json: not valid JSON/,
    );
    expect(() => [...s.samples()]).toThrow(/requests row id="a", column messages_json: not valid JSON/);
    s.close();
  });

  it("counts judgments and filtered completions, and ranks judged samples per model", () => {
    const s = RunStore.open(tmp(), { create: true });
    const user = (content: string) => [{ role: "user" as const, content }];
    s.addRequests([
      { ...req("a", 2), experiment: "harmfulness", messages: user("qa") },
      { ...req("b", 1), experiment: "harmfulness", model_id: "n", messages: user("qb") },
    ]);
    s.saveCompletions("a", null, [completion(0), { ...completion(1), finish_reason: "content_filter" }]);
    s.saveCompletions("b", null, [completion(0)]);
    const stamp = s.changeStamp();
    const judge = { metric: "harm", method: "json", raw: "", judge_request_id: null };
    s.saveJudgment({ ...judge, request_id: "a", sample_index: 0, judge_model_id: "j1", score: 10 });
    s.saveJudgment({ ...judge, request_id: "a", sample_index: 0, judge_model_id: "j2", score: 30 });
    s.saveJudgment({ ...judge, request_id: "a", sample_index: 1, judge_model_id: "j1", score: 50 });
    s.saveJudgment({ ...judge, request_id: "b", sample_index: 0, judge_model_id: "j1", score: 5 });
    expect(s.changeStamp()).not.toBe(stamp);
    expect(s.counts()).toMatchObject({ completions: 3, filteredCompletions: 1, judgments: 4 });
    expect([...s.meanScores()]).toEqual(
      expect.arrayContaining([{ request_id: "a", sample_index: 0, metric: "harm", score: 20 }]),
    );
    const top = s.topScored({ experiment: "harmfulness", metric: "harm", perModel: 1 });
    expect(
      top.map((t) => [t.model_id, t.request_id, t.sample_index, t.score, t.messages[0].content]),
    ).toEqual([
      ["m", "a", 1, 50, "qa"],
      ["n", "b", 0, 5, "qb"],
    ]);
  });
});
