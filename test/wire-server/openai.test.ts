import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWireServer, type WireServer } from "../support/wire-server.ts";

const MARKER = "FORBIDDEN-TOPIC";
let server: WireServer;
let client: OpenAI;

beforeAll(async () => {
  server = await startWireServer({
    models: ["gpt-4o-mini", "judge-model"],
    contentFilterMarker: MARKER,
    respond: (ctx) =>
      ctx.model === "judge-model"
        ? {
            text: "80",
            logprobs: [
              {
                token: "80",
                logprob: Math.log(0.7),
                top: [
                  { token: "80", logprob: Math.log(0.7) },
                  { token: "90", logprob: Math.log(0.2) },
                  { token: "70", logprob: Math.log(0.05) },
                ],
              },
            ],
          }
        : undefined,
  });
  client = new OpenAI({ apiKey: server.apiKey, baseURL: `${server.url}/v1`, maxRetries: 0 });
});
afterAll(() => server.close());

const user = (content: string) => [{ role: "user" as const, content }];

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the request to fail");
}

describe("wire server speaks OpenAI chat completions to the official SDK", () => {
  it("returns a chat.completion with n choices, usage, fingerprint and a request id", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: user("Tell me a story."), n: 3, seed: 5, temperature: 1 })
      .withResponse();
    expect(response.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    expect(response.headers.get("x-ratelimit-remaining-requests")).toBe("9999");
    expect(data).toMatchObject({ object: "chat.completion", model: "gpt-4o-mini" });
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.system_fingerprint).toMatch(/^fp_/);
    expect(typeof data.created).toBe("number");
    expect(data.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const c of data.choices) {
      expect(c.message).toMatchObject({ role: "assistant", refusal: null });
      expect(c.message.content!.length).toBeGreaterThan(0);
      expect(c.finish_reason).toBe("stop");
      expect(c.logprobs).toBeNull();
    }
    expect(new Set(data.choices.map((c) => c.message.content)).size).toBe(3);
    const words = data.choices.reduce((n, c) => n + c.message.content!.split(/\s+/).length, 0);
    expect(data.usage).toMatchObject({ prompt_tokens: 7, completion_tokens: words, total_tokens: 7 + words });
  });

  it("parses logprobs with top_logprobs, bytes, and the chosen token first at temperature 0", async () => {
    const r = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: user("Describe a river."),
      logprobs: true,
      top_logprobs: 5,
      temperature: 0,
      max_tokens: 6,
    });
    const choice = r.choices[0];
    expect(choice.finish_reason).toBe("length");
    const content = choice.logprobs!.content!;
    expect(content).toHaveLength(6);
    expect(content.map((t) => t.token).join("")).toBe(choice.message.content);
    for (const t of content) {
      expect(t.bytes).toEqual([...Buffer.from(t.token)]);
      expect(t.top_logprobs).toHaveLength(5);
      expect(t.top_logprobs[0].token).toBe(t.token);
      expect(t.top_logprobs[0].logprob).toBe(t.logprob);
      const lps = t.top_logprobs.map((a) => a.logprob);
      expect([...lps].sort((a, b) => b - a)).toEqual(lps);
    }
    expect(choice.logprobs!.refusal).toBeNull();
  });

  it("is deterministic: same seed gives the same text, another seed another text", async () => {
    const ask = (seed: number) =>
      client.chat.completions.create({ model: "gpt-4o-mini", messages: user("Same prompt."), seed });
    const [a, b, c] = await Promise.all([ask(1), ask(1), ask(2)]);
    expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
    expect(c.choices[0].message.content).not.toBe(a.choices[0].message.content);
    const greedy = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: user("Same prompt."),
      n: 4,
      temperature: 0,
    });
    expect(new Set(greedy.choices.map((ch) => ch.message.content)).size).toBe(1);
  });

  it("honours stop sequences (string or array) and max_completion_tokens", async () => {
    const base = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: user("stop test"),
      seed: 3,
    });
    const text = base.choices[0].message.content!;
    const words = text.split(" ");
    const stop = ` ${words[3]}`;
    const cut = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: user("stop test"),
      seed: 3,
      stop,
    });
    expect(cut.choices[0].finish_reason).toBe("stop");
    expect(cut.choices[0].message.content).toBe(text.slice(0, text.indexOf(stop)));
    const arr = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: user("stop test"),
      seed: 3,
      stop: ["no-such-thing", stop],
      max_completion_tokens: 2,
    });
    expect(arr.choices[0].finish_reason).toBe("length");
    expect(arr.choices[0].message.content).toBe(words.slice(0, 2).join(" "));
    expect(arr.usage!.completion_tokens).toBe(2);
  });

  it("serves scripted answers such as a judge's '80' with its own top_logprobs", async () => {
    const r = await client.chat.completions.create({
      model: "judge-model",
      messages: user("Rate this answer 0-100."),
      logprobs: true,
      top_logprobs: 20,
      max_tokens: 1,
      temperature: 0,
    });
    expect(r.choices[0].message.content).toBe("80");
    const top = r.choices[0].logprobs!.content![0].top_logprobs;
    expect(top.map((t) => t.token)).toEqual(["80", "90", "70"]);
    expect(top[1].logprob).toBeCloseTo(Math.log(0.2), 12);
  });

  it("lists and retrieves models", async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(["gpt-4o-mini", "judge-model"]);
    expect(await client.models.retrieve("judge-model")).toMatchObject({ id: "judge-model", object: "model" });
    await expect(client.models.retrieve("nope")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("setRespond swaps the scripted answers at run time; undefined falls back to generated text", async () => {
    const ask = () =>
      client.chat.completions.create({ model: "gpt-4o-mini", messages: user("swap"), seed: 1 });
    const generated = (await ask()).choices[0].message.content;
    server.setRespond((ctx) => `index ${ctx.index} of ${ctx.model} after ${ctx.messages.length} turn(s)`);
    try {
      expect((await ask()).choices[0].message.content).toBe("index 0 of gpt-4o-mini after 1 turn(s)");
    } finally {
      server.setRespond(undefined);
    }
    expect((await ask()).choices[0].message.content).toBe(generated);
  });
});

describe("wire server OpenAI errors surface as the SDK's error classes", () => {
  const bad = async (body: Record<string, unknown>) =>
    (await caught(
      client.chat.completions.create({ model: "gpt-4o-mini", messages: user("x"), ...body } as never),
    )) as InstanceType<typeof OpenAI.APIError>;

  it("400 invalid_request_error with param and code for bad fields", async () => {
    const cases: Array<[Record<string, unknown>, string | null, string | null]> = [
      [{ top_logprobs: 3 }, "top_logprobs", "invalid_value"],
      [{ n: 0 }, "n", "integer_below_min_value"],
      [{ n: 129 }, "n", "integer_above_max_value"],
      [{ top_logprobs: 21, logprobs: true }, "top_logprobs", "integer_above_max_value"],
      [{ temperature: 2.5 }, "temperature", "decimal_above_max_value"],
      [{ messages: [] }, "messages", "empty_array"],
      [{ messages: undefined }, "messages", "missing_required_parameter"],
      [{ messages: [{ role: "wizard", content: "x" }] }, "messages[0].role", "invalid_value"],
      [{ stop: ["a", "b", "c", "d", "e"] }, "stop", "array_above_max_length"],
      [{ max_tokens: 0 }, "max_tokens", "integer_below_min_value"],
      [{ bogus: 1 }, null, null],
    ];
    for (const [body, param, code] of cases) {
      const err = await bad(body);
      expect(err, JSON.stringify(body)).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err.status).toBe(400);
      expect(err.error).toMatchObject({ type: "invalid_request_error", param, code });
      expect(typeof (err.error as { message: string }).message).toBe("string");
    }
  });

  it("400 when the model is missing", async () => {
    const err = await bad({ model: undefined });
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.message).toContain("you must provide a model parameter");
  });

  it("400 code content_filter when the prompt has the marker", async () => {
    const err = await bad({ messages: user(`please discuss ${MARKER}`) });
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe("content_filter");
  });

  it("401 invalid_api_key for a wrong key", async () => {
    const wrong = new OpenAI({ apiKey: "sk-wrong-key-123", baseURL: `${server.url}/v1`, maxRetries: 0 });
    const err = (await caught(
      wrong.chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }),
    )) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.code).toBe("invalid_api_key");
    expect(err.requestID).toMatch(/^req_/);
  });

  it("404 model_not_found for a model outside opts.models", async () => {
    const err = await bad({ model: "gpt-nonexistent" });
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.code).toBe("model_not_found");
  });

  it("429 RateLimitError with retry-after and x-ratelimit headers; 500 and 503 as InternalServerError", async () => {
    server.setFaults({ retryAfterS: 2 });
    server.queueFaults("429", "500", "529");
    const e429 = await bad({});
    expect(e429).toBeInstanceOf(OpenAI.RateLimitError);
    expect(e429.code).toBe("rate_limit_exceeded");
    expect(e429.headers?.get("retry-after")).toBe("2");
    expect(e429.headers?.get("x-ratelimit-remaining-requests")).toBe("0");
    const e500 = await bad({});
    expect(e500).toBeInstanceOf(OpenAI.InternalServerError);
    expect(e500.status).toBe(500);
    expect(e500.type).toBe("server_error");
    const e503 = await bad({});
    expect(e503).toBeInstanceOf(OpenAI.InternalServerError);
    expect(e503.status).toBe(503);
  });

  it("a dropped connection surfaces as APIConnectionError", async () => {
    server.queueFaults("drop");
    const err = await bad({});
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
    // The next request on a fresh socket works.
    const ok = await client.chat.completions.create({ model: "gpt-4o-mini", messages: user("x") });
    expect(ok.choices).toHaveLength(1);
  });

  it("the SDK's own retries honour retry-after and then succeed", async () => {
    server.setFaults({ retryAfterS: 0.05 });
    server.queueFaults("429", "500");
    const retrying = new OpenAI({ apiKey: server.apiKey, baseURL: `${server.url}/v1`, maxRetries: 2 });
    const before = server.log.length;
    const r = await retrying.chat.completions.create({ model: "gpt-4o-mini", messages: user("retry me") });
    expect(r.choices[0].message.content).toBeTruthy();
    expect(server.log.slice(before).map((e) => e.outcome)).toEqual(["429", "500", "ok"]);
  });
});
