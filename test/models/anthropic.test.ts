import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnthropicModelApi } from "../../src/models/anthropic.ts";
import { createModelApi, ModelApiError, type ProviderSettings } from "../../src/models/index.ts";
import type { ChatRequest, ChatResponse } from "../../src/models/types.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";

const MODEL = "claude-haiku-4-5";
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

async function failure(p: Promise<unknown>): Promise<ModelApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ModelApiError);
    return err as ModelApiError;
  }
  throw new Error("expected the call to fail");
}

const messagesCalls = () => server.log.filter((l) => l.route === "/v1/messages");

beforeAll(async () => {
  server = await startWireServer({
    models: [MODEL],
    contentFilterMarker: "FORBIDDEN-TOPIC",
    respond: (ctx) => {
      const last = ctx.messages.at(-1)?.content ?? "";
      if (last.startsWith("script:stop")) return "alpha beta STOP gamma delta";
      if (last.startsWith("script:long")) return "one two three four five six seven";
      if (last.startsWith("script:echo-system"))
        return `system=${ctx.messages[0].role}:${ctx.messages[0].content}`;
      return undefined;
    },
  });
  settings = { provider: "anthropic", model: MODEL, baseUrl: server.url, apiKeyEnv: "WIRE_ANTHROPIC_KEY" };
  env = { WIRE_ANTHROPIC_KEY: server.apiKey };
});
afterAll(async () => {
  await server?.close();
});

describe("anthropic provider: success paths over real HTTP", () => {
  it("sends system messages as `system`, defaults max_tokens to 1024, maps the reply", async () => {
    const api = createModelApi(settings, env);
    expect(api.capabilities.has("logprobs")).toBe(false);
    const res = await api.chat({
      ...ask("script:echo-system"),
      messages: [
        { role: "system", content: "Be terse." },
        { role: "system", content: "Be kind." },
        { role: "user", content: "script:echo-system" },
      ],
    });
    expect(res.completions).toEqual([{ text: "system=system:Be terse.\n\nBe kind.", finishReason: "stop" }]);
    expect(res.usage.promptTokens).toBeGreaterThan(0);
    expect(res.usage.completionTokens).toBeGreaterThan(0);
    expect(res.responseId).toMatch(/^msg_/);
    const body = messagesCalls().at(-1)?.body as Record<string, unknown>;
    expect(body).toMatchObject({ model: MODEL, max_tokens: 1024, system: "Be terse.\n\nBe kind." });
    expect((body.messages as unknown[]).length).toBe(1);
  });

  it("passes temperature, top_p, top_k and stop_sequences; stop and max_tokens map to stop/length", async () => {
    const api = createModelApi(settings, env);
    const stopped = await api.chat(
      ask("script:stop", { params: { stop: ["STOP"], temperature: 0.5, top_k: 5 } }),
    );
    expect(stopped.completions[0]).toEqual({ text: "alpha beta ", finishReason: "stop" });
    expect(messagesCalls().at(-1)?.body).toMatchObject({
      stop_sequences: ["STOP"],
      temperature: 0.5,
      top_k: 5,
    });
    const cut = await api.chat(ask("script:long", { params: { max_tokens: 3, top_p: 0.9 } }));
    expect(cut.completions[0]).toEqual({ text: "one two three", finishReason: "length" });
    expect(messagesCalls().at(-1)?.body).toMatchObject({ max_tokens: 3, top_p: 0.9 });
  });

  it("n > 1 becomes n calls whose usage adds up", async () => {
    const api = createModelApi(settings, env);
    const before = messagesCalls().length;
    const one = await api.chat(ask("script:long"));
    const res = await api.chat(ask("script:long", { n: 3 }));
    expect(messagesCalls().length - before).toBe(4);
    expect(res.completions).toHaveLength(3);
    expect(res.usage.completionTokens).toBe(3 * one.usage.completionTokens);
    expect(res.responseId?.split(",")).toHaveLength(3);
  });

  it("refuses logprobs rather than silently returning none", async () => {
    const api = createModelApi(settings, env);
    const e = await failure(api.chat(ask("x", { params: { logprobs: true } })));
    expect(e.kind).toBe("bad_request");
    expect(e.message).toMatch(/logprobs/);
  });
});

describe("anthropic provider: every error kind", () => {
  it("429 → rate_limit with retryAfterMs; 500 and 529 → server; drop → network", async () => {
    const api = createModelApi(settings, env);
    server.setFaults({ retryAfterS: 3 });
    server.queueFaults("429", "500", "529", "drop");
    const rl = await failure(api.chat(ask("hi")));
    expect([rl.kind, rl.status, rl.retryAfterMs]).toEqual(["rate_limit", 429, 3000]);
    expect(rl.message).toMatch(/rate limit.*request id req_/);
    const e500 = await failure(api.chat(ask("hi")));
    expect([e500.kind, e500.status]).toEqual(["server", 500]);
    const e529 = await failure(api.chat(ask("hi")));
    expect([e529.kind, e529.status]).toEqual(["server", 529]);
    expect((await failure(api.chat(ask("hi")))).kind).toBe("network");
  });

  it("wrong key → auth; unknown model → not_found; filter → content_filter; bad field → bad_request", async () => {
    const wrong = createModelApi(settings, { WIRE_ANTHROPIC_KEY: "sk-ant-wrong-0000000000" });
    expect((await failure(wrong.chat(ask("hi")))).kind).toBe("auth");
    const nf = await failure(createModelApi({ ...settings, model: "claude-nope" }, env).chat(ask("hi")));
    expect([nf.kind, nf.status]).toEqual(["not_found", 404]);
    const api = createModelApi(settings, env);
    const cf = await failure(api.chat(ask("about FORBIDDEN-TOPIC")));
    expect(cf.kind).toBe("content_filter");
    const bad = await failure(api.chat(ask("hi", { params: { temperature: 1.5 } })));
    expect([bad.kind, bad.status]).toEqual(["bad_request", 400]);
    expect(bad.message).toMatch(/temperature/);
  });

  it("a 200 whose JSON body is cut off → network (retryable), saying so, also as one sample of n", async () => {
    const api = createModelApi(settings, env);
    server.queueFaults("truncate");
    const e = await failure(api.chat(ask("hi")));
    expect([e.kind, e.retryable, e.status]).toEqual(["network", true, undefined]);
    expect(e.message).toMatch(
      /^anthropic \(claude-haiku-4-5\): the response body was cut off or is not valid JSON \(.*in JSON at position \d+\)$/,
    );
    expect(messagesCalls().at(-1)).toMatchObject({ outcome: "truncated", status: 200 });
    server.queueFaults("truncate");
    expect((await failure(api.chat(ask("hi", { n: 3 })))).kind).toBe("network");
    expect((await api.chat(ask("hi", { n: 2 }))).completions).toHaveLength(2);
  });

  it("one failing sample fails the whole n-request", async () => {
    const api = createModelApi(settings, env);
    server.queueFaults("500");
    const e = await failure(api.chat(ask("hi", { n: 3 })));
    expect(e.kind).toBe("server");
  });

  it("slow server → timeout; caller's abort → aborted", async () => {
    const api = createModelApi(settings, env);
    server.setFaults({ slowRate: 1, slowMs: 3000 });
    try {
      const t0 = Date.now();
      expect((await failure(api.chat(ask("hi", { timeoutMs: 200 })))).kind).toBe("timeout");
      expect(Date.now() - t0).toBeLessThan(2000);
      const ac = new AbortController();
      const p = api.chat(ask("hi", { n: 2, signal: ac.signal }));
      setTimeout(() => ac.abort(), 50);
      expect((await failure(p)).kind).toBe("aborted");
    } finally {
      server.setFaults({ slowRate: 0 });
    }
  });

  it("the key never appears in thrown errors or the ModelApi object", async () => {
    const planted = "sk-ant-planted-SECRET-0123456789";
    const keyed = await startWireServer({ apiKey: planted, models: [MODEL] });
    try {
      const s = { ...settings, baseUrl: keyed.url };
      const good = createModelApi(s, { WIRE_ANTHROPIC_KEY: planted });
      keyed.queueFaults("429", "529", "drop", "truncate");
      const errors = [
        await failure(good.chat(ask("hi"))),
        await failure(good.chat(ask("hi"))),
        await failure(good.chat(ask("hi"))),
        await failure(good.chat(ask("hi"))),
        await failure(createModelApi(s, { WIRE_ANTHROPIC_KEY: `${planted}x` }).chat(ask("hi"))),
        await failure(
          createModelApi({ ...s, model: "nope" }, { WIRE_ANTHROPIC_KEY: planted }).chat(ask("hi")),
        ),
      ];
      expect(errors.map((e) => e.kind)).toEqual([
        "rate_limit",
        "server",
        "network",
        "network",
        "auth",
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

describe("anthropic provider: Message Batches round trip", () => {
  it("submits (n expanded into samples), polls to completed, regroups results by customId", async () => {
    const api = createModelApi(settings, env) as AnthropicModelApi;
    const id = await api.submitBatch([
      { customId: "q1", request: ask("script:long", { params: { max_tokens: 2 } }) },
      { customId: "q2", request: ask("script:stop", { n: 3, params: { stop: ["STOP"] } }) },
      { customId: "q3", request: ask("hi", { params: { temperature: 1.5 } }) },
    ]);
    expect(id).toMatch(/^msgbatch_/);
    const created = server.log.at(-1)?.body as { requests: Array<{ custom_id: string }> };
    expect(created.requests.map((r) => r.custom_id)).toEqual(["q1-n0", "q2-n0", "q2-n1", "q2-n2", "q3-n0"]);

    let status = await api.batchStatus(id);
    for (let i = 0; i < 5 && status !== "completed"; i++) status = await api.batchStatus(id);
    expect(status).toBe("completed");

    const results = await api.batchResults(id);
    expect([...results.keys()].sort()).toEqual(["q1", "q2", "q3"]);
    expect((results.get("q1") as ChatResponse).completions).toEqual([
      { text: "one two", finishReason: "length" },
    ]);
    const q2 = results.get("q2") as ChatResponse;
    expect(q2.completions).toHaveLength(3);
    expect(q2.completions.every((c) => c.text === "alpha beta " && c.finishReason === "stop")).toBe(true);
    const q3 = results.get("q3");
    expect(q3).toBeInstanceOf(ModelApiError);
    expect((q3 as ModelApiError).kind).toBe("bad_request");
  });

  it("refuses custom ids the API would reject, naming them", async () => {
    const api = createModelApi(settings, env) as AnthropicModelApi;
    await expect(api.submitBatch([{ customId: "has:colon", request: ask("x") }])).rejects.toThrow(
      /"has:colon"/,
    );
    await expect(api.submitBatch([{ customId: "ends-n1", request: ask("x") }])).rejects.toThrow(/-n<digits>/);
    await expect(
      api.submitBatch([{ customId: "x".repeat(63), request: ask("x", { n: 2 }) }]),
    ).rejects.toThrow(/64 characters/);
  });
});
