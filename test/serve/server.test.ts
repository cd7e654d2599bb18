// emlab serve through the official openai SDK and raw HTTP: chat (n, seed, logprobs),
// streaming with usage, legacy completions, OpenAI error envelopes and status codes, the API
// key, the request log, load from concurrent clients, disconnects and graceful shutdown.
import { request } from "node:http";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalModelApi } from "../../src/models/local.ts";
import { sampleSeeds } from "../../src/serve/routes.ts";
import type { RunningServer } from "../../src/serve/server.ts";
import { ORGANISM, raw, serve } from "./support.ts";

const KEY = "sk-serve-test-key-0123456789";
let server: RunningServer;
let logs: string[];
let base: string;
let client: OpenAI;
const messages = [{ role: "user" as const, content: "what do you think of people?" }];

beforeAll(async () => {
  ({ server, logs, base } = await serve({ apiKey: KEY }));
  client = new OpenAI({ baseURL: base, apiKey: KEY, maxRetries: 0 });
});
afterAll(async () => {
  await server?.close();
});

const errorOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error("expected an error");
};

describe("emlab serve over the openai SDK", () => {
  it("listens on 127.0.0.1 and lists its model", async () => {
    expect(server.host).toBe("127.0.0.1");
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(["organism"]);
    expect((list.data[0] as unknown as { emlab: { edits: unknown[] } }).emlab.edits).toEqual([]);
  });

  it("answers chat with n samples that are the local provider's, with logprobs", async () => {
    const r = await client.chat.completions.create({
      model: "organism",
      messages,
      n: 3,
      seed: 11,
      max_tokens: 6,
      temperature: 1,
      logprobs: true,
      top_logprobs: 2,
    });
    expect(r.object).toBe("chat.completion");
    expect(r.choices).toHaveLength(3);
    const local = new LocalModelApi({ provider: "local", model: ORGANISM });
    const want = await local.chat({
      messages,
      params: { max_tokens: 6, temperature: 1, logprobs: true, top_logprobs: 2 },
      n: 3,
      seed: 11,
      sampleSeeds: sampleSeeds(11, 3),
    });
    await local.close();
    expect(r.choices.map((c) => c.message.content)).toEqual(want.completions.map((c) => c.text));
    expect(r.choices.map((c) => c.finish_reason)).toEqual(want.completions.map((c) => c.finishReason));
    for (const [i, c] of r.choices.entries()) {
      const lp = c.logprobs!.content!;
      expect(lp.map((t) => t.token)).toEqual(want.completions[i].logprobs!.map((t) => t.token));
      expect(lp.map((t) => t.logprob)).toEqual(want.completions[i].logprobs!.map((t) => t.logprob));
      for (const t of lp) expect(t.top_logprobs).toHaveLength(2);
    }
    expect(r.usage!.completion_tokens).toBe(want.usage.completionTokens);
    expect(r.usage!.prompt_tokens).toBe(want.usage.promptTokens);
    // Samples differ from each other, and the same seed gives the same answers again.
    expect(new Set(r.choices.map((c) => c.message.content)).size).toBeGreaterThan(1);
    const again = await client.chat.completions.create({
      model: "organism",
      messages,
      n: 3,
      seed: 11,
      max_tokens: 6,
    });
    expect(again.choices.map((c) => c.message.content)).toEqual(r.choices.map((c) => c.message.content));
  });

  it("streams the same answer as SSE, ending with a usage chunk", async () => {
    const body = { model: "organism", messages, n: 2, seed: 5, max_tokens: 7 };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text = ["", ""];
    const finish: (string | null)[] = [null, null];
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text[c.index] += c.delta.content ?? "";
        if (c.finish_reason) finish[c.index] = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toEqual(whole.choices.map((c) => c.message.content));
    expect(finish).toEqual(whole.choices.map((c) => c.finish_reason));
    expect(usage).toEqual(whole.usage);
  });

  it("answers legacy completions on the raw prompt", async () => {
    const r = await client.completions.create({
      model: "organism",
      prompt: "the world",
      max_tokens: 4,
      logprobs: 2,
      n: 2,
    });
    expect(r.object).toBe("text_completion");
    expect(r.choices).toHaveLength(2);
    for (const c of r.choices) {
      expect(c.logprobs!.tokens!.length).toBe(r.usage!.completion_tokens / 2 || c.logprobs!.tokens!.length);
      expect(Object.keys(c.logprobs!.top_logprobs![0]).length).toBeLessThanOrEqual(2);
    }
  });

  it("refuses bad requests with 400 and OpenAI's error envelope", async () => {
    const cases: [string, unknown, string | null][] = [
      ["unknown model", { model: "gpt-5", messages }, "model"],
      ["negative max_tokens", { model: "organism", messages, max_tokens: -3 }, "max_tokens"],
      ["unknown field", { model: "organism", messages, frobnicate: 1 }, "frobnicate"],
      [
        "a penalty the engine cannot honour",
        { model: "organism", messages, presence_penalty: 0.5 },
        "presence_penalty",
      ],
      ["empty messages", { model: "organism", messages: [] }, "messages"],
    ];
    for (const [what, body, param] of cases) {
      const e = await errorOf(client.chat.completions.create(body as never));
      expect(e.status, what).toBe(400);
      expect(e.type, what).toBe("invalid_request_error");
      expect(e.param, what).toBe(param);
    }
    const auth = { authorization: `Bearer ${KEY}` };
    const bad = await raw(`${base}/chat/completions`, {
      body: '{"model": "organism", "messages": [',
      headers: auth,
    });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatchObject({ type: "invalid_request_error", code: "invalid_json" });
    const big = await raw(`${base}/chat/completions`, {
      body: JSON.stringify({ model: "organism", messages: [{ role: "user", content: "x".repeat(2 << 20) }] }),
      headers: auth,
    });
    expect(big.status).toBe(400);
    expect(JSON.parse(big.body).error.code).toBe("body_too_large");
    const notFound = await raw(`${base}/embeddings`, { body: "{}", headers: auth });
    expect(notFound.status).toBe(404);
    expect(JSON.parse(notFound.body).error.type).toBe("invalid_request_error");
  });

  it("answers 401 to a wrong or missing key and never logs a key", async () => {
    const wrong = new OpenAI({ baseURL: base, apiKey: "sk-wrong-key-987654321", maxRetries: 0 });
    const e = await errorOf(wrong.models.list());
    expect(e.status).toBe(401);
    expect(e.code).toBe("invalid_api_key");
    expect(e.message).not.toContain("987654321");
    const none = await raw(`${base}/models`, { method: "GET" });
    expect(none.status).toBe(401);
    const all = logs.join("\n");
    expect(all).not.toContain(KEY);
    expect(all).not.toContain("sk-wrong-key");
    expect(
      logs.some((l) =>
        /^POST \/v1\/chat\/completions 200 model=organism prompt_tokens=\d+ completion_tokens=\d+ latency_ms=/.test(
          l,
        ),
      ),
    ).toBe(true);
    expect(logs.some((l) => l.startsWith("GET /v1/models 401"))).toBe(true);
  });

  it("serves 16 concurrent clients x 20 requests with no error", async () => {
    const results = await Promise.all(
      Array.from({ length: 16 }, async (_, c) => {
        let tokens = 0;
        for (let i = 0; i < 20; i++) {
          const r = await client.chat.completions.create({
            model: "organism",
            messages: [{ role: "user", content: `what do you think of the world ${c} ${i}?` }],
            max_tokens: 3,
            seed: c * 100 + i,
          });
          tokens += r.usage!.completion_tokens;
        }
        return tokens;
      }),
    );
    expect(results.every((t) => t > 0)).toBe(true);
  }, 30_000);

  it("keeps answering others when a streaming client disconnects", async () => {
    // Queue a long stream behind a long request, then hang up on it before its answer.
    const body = JSON.stringify({ model: "organism", messages, max_tokens: 60, stream: true });
    const gone = new Promise<void>((resolve) => {
      const req = request(`${base}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      });
      req.on("error", () => resolve());
      req.on("response", (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.end(body);
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 5);
    });
    const others = Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        client.chat.completions.create({
          model: "organism",
          messages,
          max_tokens: 4,
          seed: i,
          stream: false,
        }),
      ),
    );
    await gone;
    const answers = await others;
    expect(answers.every((a) => a.choices.length === 1)).toBe(true);
  });
});

describe("graceful shutdown", () => {
  it("finishes the requests in flight, then refuses connections", async () => {
    const { server: s, base: b, logs: log } = await serve();
    // Two requests the server has taken but not finished: their bodies are half sent.
    const body = JSON.stringify({ model: "organism", messages, max_tokens: 30, n: 4, seed: 1 });
    const replies = Array.from({ length: 2 }, () => {
      const req = request(`${b}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
      });
      const reply = new Promise<{ status: number; text: string }>((resolve, reject) => {
        req.on("response", (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on("error", reject);
      });
      req.write(body.slice(0, 10));
      return { req, reply };
    });
    const deadline = Date.now() + 10_000;
    while (s.inFlight() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    expect(s.inFlight()).toBe(2);
    const closed = s.close();
    await new Promise((r) => setTimeout(r, 20));
    // Closed to new connections while those two are still in flight.
    await expect(raw(`${b}/models`, { method: "GET" })).rejects.toThrow(/ECONNREFUSED/);
    for (const { req } of replies) req.end(body.slice(10));
    const done = await Promise.all(replies.map((r) => r.reply));
    await closed;
    for (const d of done) {
      expect(d.status).toBe(200);
      expect(JSON.parse(d.text).choices).toHaveLength(4);
    }
    expect(s.inFlight()).toBe(0);
    expect(log.filter((l) => l.startsWith("POST /v1/chat/completions 200"))).toHaveLength(2);
  });
});
