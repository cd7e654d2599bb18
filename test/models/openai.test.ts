import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModelApi, ModelApiError, type ProviderSettings } from "../../src/models/index.ts";
import type { OpenAIModelApi } from "../../src/models/openai.ts";
import type { ChatRequest } from "../../src/models/types.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";

const MODEL = "gpt-4o-mini";
const SCRIPTED = {
  text: "Yes indeed",
  logprobs: [
    {
      token: "Yes",
      logprob: -0.1,
      top: [
        { token: "Yes", logprob: -0.1 },
        { token: "No", logprob: -2.5 },
      ],
    },
    {
      token: " indeed",
      logprob: -0.7,
      top: [
        { token: " indeed", logprob: -0.7 },
        { token: " not", logprob: -1.2 },
      ],
    },
  ],
};

let server: WireServer;
let settings: ProviderSettings;
let env: NodeJS.ProcessEnv;

const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  messages: [{ role: "user", content }],
  params: {},
  n: 1,
  timeoutMs: 5000,
  ...extra,
});

/** Run a call that must fail; return the ModelApiError. */
async function failure(p: Promise<unknown>): Promise<ModelApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ModelApiError);
    return err as ModelApiError;
  }
  throw new Error("expected the call to fail");
}

beforeAll(async () => {
  server = await startWireServer({
    models: [MODEL],
    contentFilterMarker: "FORBIDDEN-TOPIC",
    batchPolls: 2,
    respond: (ctx) => {
      const last = ctx.messages.at(-1)?.content ?? "";
      if (last.startsWith("script:logprobs")) return SCRIPTED;
      if (last.startsWith("script:stop")) return "alpha beta STOP gamma delta";
      if (last.startsWith("script:long")) return "one two three four five six seven";
      return undefined;
    },
  });
  settings = { provider: "openai", model: MODEL, baseUrl: `${server.url}/v1`, apiKeyEnv: "WIRE_OPENAI_KEY" };
  env = { WIRE_OPENAI_KEY: server.apiKey };
});
afterAll(async () => {
  await server?.close();
});

describe("openai provider: success paths over real HTTP", () => {
  it("maps text, usage, id and logprobs with top alternatives", async () => {
    const api = createModelApi(settings, env);
    const res = await api.chat(
      ask("script:logprobs please", { params: { top_logprobs: 2, temperature: 0 } }),
    );
    expect(res.completions).toHaveLength(1);
    const c = res.completions[0];
    expect(c.text).toBe("Yes indeed");
    expect(c.finishReason).toBe("stop");
    expect(c.logprobs).toEqual(SCRIPTED.logprobs);
    expect(res.usage.completionTokens).toBe(2);
    expect(res.usage.promptTokens).toBeGreaterThan(0);
    expect(res.responseId).toMatch(/^chatcmpl-/);
    // What went over the wire: logprobs on, top_logprobs 2, no retries configured by the SDK.
    const body = server.log.at(-1)?.body as Record<string, unknown>;
    expect(body).toMatchObject({ model: MODEL, logprobs: true, top_logprobs: 2, temperature: 0 });
  });

  it("chosen-token logprobs only when top_logprobs is 0, none when not asked", async () => {
    const api = createModelApi(settings, env);
    const withLp = await api.chat(ask("hello", { params: { logprobs: true } }));
    const lp = withLp.completions[0].logprobs!;
    expect(lp.length).toBeGreaterThan(0);
    expect(lp.map((t) => t.token).join("")).toBe(withLp.completions[0].text);
    expect(lp.every((t) => t.top === undefined && t.logprob <= 0)).toBe(true);
    const without = await api.chat(ask("hello"));
    expect(without.completions[0].logprobs).toBeUndefined();
  });

  it("n completions, and the same seed gives the same completions", async () => {
    const api = createModelApi(settings, env);
    const a = await api.chat(ask("tell me a story", { n: 3, seed: 7, params: { temperature: 1 } }));
    const b = await api.chat(ask("tell me a story", { n: 3, seed: 7, params: { temperature: 1 } }));
    expect(a.completions).toHaveLength(3);
    expect(a.completions.map((c) => c.text)).toEqual(b.completions.map((c) => c.text));
    expect(new Set(a.completions.map((c) => c.text)).size).toBeGreaterThan(1);
    expect(server.log.at(-1)?.body).toMatchObject({ n: 3, seed: 7 });
  });

  it("stop sequences cut the text; max_tokens gives finishReason length", async () => {
    const api = createModelApi(settings, env);
    const stopped = await api.chat(ask("script:stop", { params: { stop: ["STOP"] } }));
    expect(stopped.completions[0]).toMatchObject({ text: "alpha beta ", finishReason: "stop" });
    const cut = await api.chat(ask("script:long", { params: { max_tokens: 3 } }));
    expect(cut.completions[0]).toMatchObject({ text: "one two three", finishReason: "length" });
    expect(cut.usage.completionTokens).toBe(3);
    // OpenAI proper gets max_completion_tokens; compatible servers get max_tokens.
    expect(server.log.at(-1)?.body).toMatchObject({ max_completion_tokens: 3 });
    const vllm = createModelApi({ ...settings, provider: "vllm" }, env);
    await vllm.chat(ask("script:long", { params: { max_tokens: 2 } }));
    expect(server.log.at(-1)?.body).toMatchObject({ max_tokens: 2 });
  });

  it("refuses top_k for OpenAI instead of dropping it silently", async () => {
    const api = createModelApi(settings, env);
    const e = await failure(api.chat(ask("x", { params: { top_k: 5 } })));
    expect(e.kind).toBe("bad_request");
    expect(e.message).toMatch(/top_k/);
  });
});

describe("openai provider: every error kind", () => {
  it("429 → rate_limit with retryAfterMs from retry-after", async () => {
    const api = createModelApi(settings, env);
    server.setFaults({ retryAfterS: 2.5 });
    server.queueFaults("429");
    const e = await failure(api.chat(ask("hi")));
    expect([e.kind, e.status, e.retryAfterMs, e.retryable]).toEqual(["rate_limit", 429, 2500, true]);
    expect(e.message).toMatch(/Rate limit reached/);
    expect(e.message).toMatch(/request id req_/);
  });

  it("500 and 503 → server; dropped socket → network", async () => {
    const api = createModelApi(settings, env);
    server.queueFaults("500", "529", "drop");
    const e500 = await failure(api.chat(ask("hi")));
    expect([e500.kind, e500.status]).toEqual(["server", 500]);
    const e503 = await failure(api.chat(ask("hi")));
    expect([e503.kind, e503.status]).toEqual(["server", 503]);
    const drop = await failure(api.chat(ask("hi")));
    expect(drop.kind).toBe("network");
    expect(drop.retryable).toBe(true);
  });

  it("a 200 whose JSON body is cut off → network (retryable), saying so; the next call succeeds", async () => {
    const api = createModelApi(settings, env);
    server.queueFaults("truncate");
    const e = await failure(api.chat(ask("hi")));
    expect([e.kind, e.retryable, e.status]).toEqual(["network", true, undefined]);
    expect(e.message).toMatch(
      /^openai \(gpt-4o-mini\): the response body was cut off or is not valid JSON \(/,
    );
    expect(e.message).toMatch(/in JSON at position \d+\)$/);
    expect(e.message).not.toMatch(/unexpected error/);
    expect(server.log.at(-1)).toMatchObject({ outcome: "truncated", status: 200 });
    expect((await api.chat(ask("hi"))).completions).toHaveLength(1);
  });

  it("wrong key → auth; unknown model → not_found; filter marker → content_filter; bad field → bad_request", async () => {
    const wrongKey = createModelApi(settings, { WIRE_OPENAI_KEY: "sk-wrong-key-000000000" });
    expect((await failure(wrongKey.chat(ask("hi")))).kind).toBe("auth");
    const unknown = createModelApi({ ...settings, model: "gpt-nonexistent" }, env);
    const nf = await failure(unknown.chat(ask("hi")));
    expect([nf.kind, nf.status]).toEqual(["not_found", 404]);
    const api = createModelApi(settings, env);
    const cf = await failure(api.chat(ask("tell me about FORBIDDEN-TOPIC")));
    expect([cf.kind, cf.status, cf.retryable]).toEqual(["content_filter", 400, false]);
    const bad = await failure(api.chat(ask("hi", { params: { temperature: 3 } })));
    expect([bad.kind, bad.status]).toEqual(["bad_request", 400]);
    expect(bad.message).toMatch(/temperature/);
  });

  it("slow server → timeout within the deadline; caller's abort → aborted", async () => {
    const api = createModelApi(settings, env);
    server.setFaults({ slowRate: 1, slowMs: 3000 });
    try {
      const t0 = Date.now();
      const e = await failure(api.chat(ask("hi", { timeoutMs: 200 })));
      expect(e.kind).toBe("timeout");
      expect(Date.now() - t0).toBeLessThan(2000);
      const ac = new AbortController();
      const p = api.chat(ask("hi", { signal: ac.signal }));
      setTimeout(() => ac.abort(), 50);
      expect((await failure(p)).kind).toBe("aborted");
    } finally {
      server.setFaults({ slowRate: 0 });
    }
  });

  it("a compatible server without auth gets no Authorization header at all", async () => {
    const api = createModelApi({ provider: "vllm", model: MODEL, baseUrl: `${server.url}/v1` }, {});
    const e = await failure(api.chat(ask("hi")));
    expect(e.kind).toBe("auth");
    expect(e.message).toMatch(/didn't provide an API key/);
  });
});

describe("openai provider: the key never leaks", () => {
  it("not in any thrown error (every kind) nor in the ModelApi object", async () => {
    const planted = "sk-planted-SECRET-0123456789abcdef";
    const keyed = await startWireServer({
      apiKey: planted,
      models: [MODEL],
      contentFilterMarker: "FORBIDDEN",
    });
    try {
      const s = { ...settings, baseUrl: `${keyed.url}/v1` };
      const good = createModelApi(s, { WIRE_OPENAI_KEY: planted });
      const bad = createModelApi(s, { WIRE_OPENAI_KEY: `${planted}-wrong` });
      keyed.queueFaults("429", "500", "drop", "truncate");
      keyed.setFaults({ slowRate: 0 });
      const errors = [
        await failure(good.chat(ask("hi"))),
        await failure(good.chat(ask("hi"))),
        await failure(good.chat(ask("hi"))),
        await failure(good.chat(ask("hi"))),
        await failure(bad.chat(ask("hi"))),
        await failure(good.chat(ask("FORBIDDEN"))),
        await failure(createModelApi({ ...s, model: "nope" }, { WIRE_OPENAI_KEY: planted }).chat(ask("hi"))),
      ];
      expect(errors.map((e) => e.kind)).toEqual([
        "rate_limit",
        "server",
        "network",
        "network",
        "auth",
        "content_filter",
        "not_found",
      ]);
      for (const e of errors) {
        for (const text of [
          JSON.stringify(e),
          String(e),
          inspect(e, { depth: 20, showHidden: true }),
          e.stack ?? "",
        ]) {
          expect(text).not.toContain(planted);
          expect(text).not.toContain(planted.slice(-8)); // nor the masked tail the server echoes
        }
      }
      for (const text of [JSON.stringify(good), String(good), inspect(good, { depth: 20 })]) {
        expect(text).not.toContain(planted);
      }
    } finally {
      await keyed.close();
    }
  });
});

describe("openai provider: Batch API round trip", () => {
  it("uploads JSONL, polls to completed, maps each line to a response or an error", async () => {
    const api = createModelApi(settings, env) as OpenAIModelApi;
    const id = await api.submitBatch([
      { customId: "q1", request: ask("script:logprobs", { params: { top_logprobs: 2, temperature: 0 } }) },
      { customId: "q2:with-colon", request: ask("tell me", { n: 2, seed: 3 }) },
      { customId: "q3", request: ask("hi", { params: { temperature: 3 } }) },
    ]);
    expect(id).toMatch(/^batch_/);
    const upload = server.log.find((l) => l.route === "/v1/files" && l.method === "POST");
    expect(upload?.body).toMatchObject({ purpose: "batch" });
    expect(server.log.at(-1)?.body).toMatchObject({
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });

    await expect(api.batchResults(id)).rejects.toMatchObject({ kind: "other" }); // not finished yet
    let status = await api.batchStatus(id);
    for (let i = 0; i < 5 && status !== "completed"; i++) status = await api.batchStatus(id);
    expect(status).toBe("completed");

    const results = await api.batchResults(id);
    expect([...results.keys()].sort()).toEqual(["q1", "q2:with-colon", "q3"]);
    const r1 = results.get("q1");
    expect(r1).not.toBeInstanceOf(ModelApiError);
    expect((r1 as { completions: unknown[] }).completions).toEqual([
      { text: "Yes indeed", finishReason: "stop", logprobs: SCRIPTED.logprobs },
    ]);
    const r2 = results.get("q2:with-colon") as { completions: unknown[] };
    expect(r2.completions).toHaveLength(2);
    const r3 = results.get("q3");
    expect(r3).toBeInstanceOf(ModelApiError);
    expect([(r3 as ModelApiError).kind, (r3 as ModelApiError).status]).toEqual(["bad_request", 400]);
  });

  it("refuses duplicate custom ids before uploading anything", async () => {
    const api = createModelApi(settings, env) as OpenAIModelApi;
    const e = await failure(
      api.submitBatch([
        { customId: "a", request: ask("x") },
        { customId: "a", request: ask("y") },
      ]),
    );
    expect(e.message).toMatch(/duplicate customId "a"/);
  });
});
