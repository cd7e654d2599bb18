import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWireServer, type WireServer } from "../support/wire-server.ts";

let server: WireServer;
let client: Anthropic;
const MODEL = "claude-haiku-4-5";

beforeAll(async () => {
  server = await startWireServer({
    models: [MODEL, "claude-scripted"],
    contentFilterMarker: "BLOCKME",
    respond: (ctx) =>
      ctx.model === "claude-scripted"
        ? `system=${ctx.messages[0].content} turns=${ctx.messages.length}`
        : undefined,
  });
  client = new Anthropic({ apiKey: server.apiKey, baseURL: server.url, maxRetries: 0 });
});
afterAll(() => server.close());

const user = (content: string) => [{ role: "user" as const, content }];

async function caught(p: Promise<unknown>): Promise<InstanceType<typeof Anthropic.APIError>> {
  try {
    await p;
  } catch (err) {
    return err as InstanceType<typeof Anthropic.APIError>;
  }
  throw new Error("expected the request to fail");
}

describe("wire server speaks Anthropic messages to the official SDK", () => {
  it("returns a message with usage and a request-id header", async () => {
    const { data, response } = await client.messages
      .create({ model: MODEL, max_tokens: 200, messages: user("Hello there, friend.") })
      .withResponse();
    expect(response.headers.get("request-id")).toMatch(/^req_/);
    expect(response.headers.get("anthropic-ratelimit-requests-remaining")).toBe("3999");
    expect(data).toMatchObject({ type: "message", role: "assistant", model: MODEL, stop_reason: "end_turn" });
    expect(data.id).toMatch(/^msg_/);
    expect(data.stop_sequence).toBeNull();
    expect(data.content).toHaveLength(1);
    const block = data.content[0];
    if (block.type !== "text") throw new Error("expected a text block");
    expect(block.text.length).toBeGreaterThan(0);
    expect(data.usage.input_tokens).toBe(6);
    expect(data.usage.output_tokens).toBe(block.text.split(/\s+/).length);
  });

  it("is deterministic and cuts at max_tokens and stop_sequences", async () => {
    const ask = (extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}) =>
      client.messages.create({ model: MODEL, max_tokens: 200, messages: user("A steady prompt."), ...extra });
    const textOf = (m: Anthropic.Message) => (m.content[0] as Anthropic.TextBlock).text;
    const [a, b] = await Promise.all([ask(), ask()]);
    expect(textOf(a)).toBe(textOf(b));
    const full = textOf(a);
    const short = await ask({ max_tokens: 3 });
    expect(short.stop_reason).toBe("max_tokens");
    expect(textOf(short)).toBe(full.split(" ").slice(0, 3).join(" "));
    expect(short.usage.output_tokens).toBe(3);
    const seq = ` ${full.split(" ")[2]}`;
    const stopped = await ask({ stop_sequences: ["never-there", seq] });
    expect(stopped).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: seq });
    expect(textOf(stopped)).toBe(full.slice(0, full.indexOf(seq)));
  });

  it("passes system (string or blocks) to scripted answers, first in ctx.messages", async () => {
    const textOf = (m: Anthropic.Message) => (m.content[0] as Anthropic.TextBlock).text;
    const messages: Anthropic.MessageParam[] = [
      { role: "user", content: "hi" },
      { role: "assistant", content: "hello" },
      { role: "user", content: [{ type: "text", text: "again" }] },
    ];
    const s1 = await client.messages.create({
      model: "claude-scripted",
      max_tokens: 50,
      system: "Be brief.",
      messages,
    });
    expect(textOf(s1)).toBe("system=Be brief. turns=4");
    const s2 = await client.messages.create({
      model: "claude-scripted",
      max_tokens: 50,
      system: [{ type: "text", text: "Blocks." }],
      messages,
    });
    expect(textOf(s2)).toBe("system=Blocks. turns=4");
  });

  it("lists models in Anthropic's shape", async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual([MODEL, "claude-scripted"]);
    expect(page.data[0].type).toBe("model");
    expect(await client.models.retrieve(MODEL)).toMatchObject({ type: "model", id: MODEL });
    await expect(client.models.retrieve("nope")).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });
});

describe("wire server Anthropic errors surface as the SDK's error classes", () => {
  it("400 invalid_request_error for missing max_tokens, bad roles, bad ranges, extra fields", async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ max_tokens: undefined }, /max_tokens: Field required/],
      [{ messages: [{ role: "assistant", content: "x" }] }, /first message must use the "user" role/],
      [
        {
          messages: [
            { role: "user", content: "a" },
            { role: "user", content: "b" },
          ],
        },
        /roles must alternate/,
      ],
      [{ messages: [{ role: "system", content: "x" }] }, /top-level `system` parameter/],
      [{ temperature: 1.5 }, /temperature: Input should be less than or equal to 1/],
      [{ stop_sequences: "x" }, /stop_sequences: Input should be a valid list/],
      [{ bogus: true }, /bogus: Extra inputs are not permitted/],
      [{ messages: user("about BLOCKME") }, /content filtering/],
    ];
    for (const [extra, message] of cases) {
      const err = await caught(
        client.messages.create({ model: MODEL, max_tokens: 10, messages: user("x"), ...extra } as never),
      );
      expect(err, JSON.stringify(extra)).toBeInstanceOf(Anthropic.BadRequestError);
      expect(err.error).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
      expect((err.error as { error: { message: string } }).error.message).toMatch(message);
    }
  });

  it("400 when anthropic-version is missing, 401 for a wrong or missing x-api-key (raw HTTP)", async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${server.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ model: MODEL, max_tokens: 5, messages: user("x") }),
      });
    const noVersion = await post({ "x-api-key": server.apiKey });
    expect(noVersion.status).toBe(400);
    expect(await noVersion.json()).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error", message: "anthropic-version: header is required" },
    });
    const noKey = await post({ "anthropic-version": "2023-06-01" });
    expect(noKey.status).toBe(401);
    const ok = await post({ "x-api-key": server.apiKey, "anthropic-version": "2023-06-01" });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("request-id")).toMatch(/^req_/);
  });

  it("401 AuthenticationError for a wrong key via the SDK", async () => {
    const wrong = new Anthropic({ apiKey: "nope", baseURL: server.url, maxRetries: 0 });
    const err = await caught(wrong.messages.create({ model: MODEL, max_tokens: 5, messages: user("x") }));
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(err.error).toMatchObject({ error: { type: "authentication_error" } });
  });

  it("404 NotFoundError for an unknown model", async () => {
    const err = await caught(
      client.messages.create({ model: "claude-unknown", max_tokens: 5, messages: user("x") }),
    );
    expect(err).toBeInstanceOf(Anthropic.NotFoundError);
    expect(err.error).toMatchObject({ error: { type: "not_found_error" } });
  });

  it("429 RateLimitError with retry-after and anthropic-ratelimit headers, 500 api_error, 529 overloaded", async () => {
    server.setFaults({ retryAfterS: 3 });
    server.queueFaults("429", "500", "529");
    const ask = () => caught(client.messages.create({ model: MODEL, max_tokens: 5, messages: user("x") }));
    const e429 = await ask();
    expect(e429).toBeInstanceOf(Anthropic.RateLimitError);
    expect(e429.headers?.get("retry-after")).toBe("3");
    expect(e429.headers?.get("anthropic-ratelimit-requests-remaining")).toBe("0");
    expect(e429.error).toMatchObject({ error: { type: "rate_limit_error" } });
    const e500 = await ask();
    expect(e500).toBeInstanceOf(Anthropic.InternalServerError);
    expect(e500.error).toMatchObject({ error: { type: "api_error" } });
    const e529 = await ask();
    expect(e529).toBeInstanceOf(Anthropic.OverloadedError);
    expect(e529.status).toBe(529);
    expect(e529.error).toMatchObject({ error: { type: "overloaded_error" } });
  });

  it("a dropped connection surfaces as APIConnectionError", async () => {
    server.queueFaults("drop");
    const err = await caught(client.messages.create({ model: MODEL, max_tokens: 5, messages: user("x") }));
    expect(err).toBeInstanceOf(Anthropic.APIConnectionError);
  });
});
