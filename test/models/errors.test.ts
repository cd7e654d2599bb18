import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import {
  APIError as AnthropicAPIError,
  APIConnectionError as AnthropicConnectionError,
} from "@anthropic-ai/sdk";
import { APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { describe, expect, it } from "vitest";
import {
  callMapped,
  kindForAnthropicType,
  kindForStatus,
  nonJsonBodyError,
  parseRetryAfterMs,
  redactSecrets,
  toModelApiError,
} from "../../src/models/errors.ts";
import { createModelApi } from "../../src/models/index.ts";
import { ModelApiError } from "../../src/models/types.ts";

const ctx = { provider: "openai", model: "gpt-x", secrets: ["sk-planted-secret-123456"] };

describe("parseRetryAfterMs", () => {
  it("prefers retry-after-ms, then retry-after seconds, then an HTTP-date", () => {
    expect(parseRetryAfterMs(new Headers({ "retry-after-ms": "1500.4", "retry-after": "9" }))).toBe(1500);
    expect(parseRetryAfterMs(new Headers({ "retry-after": "2" }))).toBe(2000);
    expect(parseRetryAfterMs(new Headers({ "retry-after": "0.25" }))).toBe(250);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfterMs({ "Retry-After": "Thu, 01 Jan 2026 00:00:07 GMT" }, now)).toBe(7000);
    // A date in the past means "now", never a negative wait.
    expect(parseRetryAfterMs({ "retry-after": "Wed, 31 Dec 2025 23:59:00 GMT" }, now)).toBe(0);
  });
  it("is undefined when absent or garbage", () => {
    expect(parseRetryAfterMs(new Headers())).toBeUndefined();
    expect(parseRetryAfterMs(new Headers({ "retry-after": "soon" }))).toBeUndefined();
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
  });
});

describe("kind mapping", () => {
  it("maps statuses", () => {
    expect(kindForStatus(429)).toBe("rate_limit");
    for (const s of [500, 502, 503, 504, 529]) expect(kindForStatus(s)).toBe("server");
    expect(kindForStatus(400)).toBe("bad_request");
    expect(kindForStatus(400, "content_filter Your prompt was flagged")).toBe("content_filter");
    expect(kindForStatus(401)).toBe("auth");
    expect(kindForStatus(403)).toBe("auth");
    expect(kindForStatus(404)).toBe("not_found");
    expect(kindForStatus(408)).toBe("timeout");
    expect(kindForStatus(409)).toBe("other");
  });
  it("maps Anthropic error types", () => {
    expect(kindForAnthropicType("overloaded_error")).toBe("server");
    expect(kindForAnthropicType("rate_limit_error")).toBe("rate_limit");
    expect(kindForAnthropicType("invalid_request_error")).toBe("bad_request");
    expect(kindForAnthropicType("authentication_error")).toBe("auth");
    expect(kindForAnthropicType("not_found_error")).toBe("not_found");
    expect(kindForAnthropicType(undefined)).toBe("other");
  });
});

describe("toModelApiError on SDK error objects", () => {
  it("maps an OpenAI 429 with retry-after-ms, status and request id", () => {
    const sdk = APIError.generate(
      429,
      { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } },
      undefined,
      new Headers({ "retry-after-ms": "1234", "x-request-id": "req_abc" }),
    );
    const e = toModelApiError(sdk, ctx);
    expect(e.kind).toBe("rate_limit");
    expect(e.status).toBe(429);
    expect(e.retryAfterMs).toBe(1234);
    expect(e.retryable).toBe(true);
    expect(e.message).toContain("Rate limit reached");
    expect(e.message).toContain("req_abc");
    expect(e.message).toContain("openai (gpt-x)");
  });
  it("maps an Anthropic 529 overloaded and a connection error", () => {
    const sdk = AnthropicAPIError.generate(
      529,
      { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
      undefined,
      new Headers({ "request-id": "req_ant" }),
    );
    const e = toModelApiError(sdk, { provider: "anthropic" });
    expect([e.kind, e.status]).toEqual(["server", 529]);
    expect(e.message).toContain("Overloaded");
    expect(e.message).toContain("req_ant");
    const conn = new AnthropicConnectionError({
      cause: Object.assign(new Error("other side closed"), { code: "ECONNRESET" }),
    });
    expect(toModelApiError(conn, { provider: "anthropic" }).kind).toBe("network");
  });
  it("maps timeouts and user aborts", () => {
    expect(toModelApiError(new APIConnectionTimeoutError(), ctx).kind).toBe("timeout");
    expect(toModelApiError(new APIUserAbortError(), ctx).kind).toBe("aborted");
    expect(toModelApiError(new APIUserAbortError(), ctx, { expired: true }).kind).toBe("timeout");
  });
  it("never carries a secret the server echoed, in any form", () => {
    const sdk = APIError.generate(
      401,
      {
        error: {
          message: "Incorrect API key provided: sk-planted-secret-123456. Also Bearer abcdefgh",
          code: "invalid_api_key",
        },
      },
      undefined,
      new Headers({ authorization: "Bearer sk-planted-secret-123456" }),
    );
    const e = toModelApiError(sdk, ctx);
    expect(e.kind).toBe("auth");
    for (const s of [e.message, String(e), JSON.stringify(e), e.stack ?? "", inspect(e, { depth: 10 })]) {
      expect(s).not.toContain("sk-planted-secret-123456");
      expect(s).not.toContain("abcdefgh");
    }
  });
  it("redacts key-shaped strings even when the exact key is unknown", () => {
    expect(redactSecrets("key sk-proj-ABCDEFGH12345 here")).toBe("key [redacted] here");
    expect(redactSecrets("hunter2hunter2 x", ["hunter2hunter2"])).toBe("[redacted] x");
  });
});

describe("callMapped", () => {
  it("turns its own deadline into a timeout even when the callee ignores the SDK timeout", async () => {
    const t0 = Date.now();
    const p = callMapped(
      ctx,
      { timeoutMs: 50 },
      (signal) =>
        new Promise((_, reject) => {
          signal.addEventListener("abort", () =>
            reject(Object.assign(new Error("aborted"), { name: "AbortError" })),
          );
        }),
    );
    await expect(p).rejects.toMatchObject({ kind: "timeout" });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
  it("passes the user's abort through as aborted, and refuses an already-aborted signal", async () => {
    const ac = new AbortController();
    const p = callMapped(
      ctx,
      { signal: ac.signal, timeoutMs: 10_000 },
      (signal) =>
        new Promise((_, reject) => {
          signal.addEventListener("abort", () =>
            reject(Object.assign(new Error("aborted"), { name: "AbortError" })),
          );
        }),
    );
    ac.abort();
    await expect(p).rejects.toMatchObject({ kind: "aborted" });
    const viaCallerTimeout = callMapped(
      ctx,
      { signal: AbortSignal.timeout(20) },
      (signal) =>
        new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("stopped")))),
    );
    await expect(viaCallerTimeout).rejects.toMatchObject({ kind: "timeout" });
    await expect(callMapped(ctx, { signal: ac.signal }, async () => 1)).rejects.toBeInstanceOf(ModelApiError);
  });
});

describe("a 2xx body that is cut off or not JSON", () => {
  it("maps the SDKs' raw SyntaxError (as both throw it) to network, retryable, saying what happened", () => {
    const e = toModelApiError(new SyntaxError("Unterminated string in JSON at position 361"), ctx);
    expect([e.kind, e.retryable, e.status]).toEqual(["network", true, undefined]);
    expect(e.message).toBe(
      "openai (gpt-x): the response body was cut off or is not valid JSON (Unterminated string in JSON at position 361)",
    );
    // Not the old "unexpected error" of kind other.
    expect(toModelApiError(new SyntaxError("Unexpected end of JSON input"), ctx).kind).toBe("network");
    // Wrapped in a cause chain, too.
    const wrapped = new Error("parse failed", { cause: new SyntaxError("Unexpected end of JSON input") });
    expect(toModelApiError(wrapped, ctx).kind).toBe("network");
    // A SyntaxError that is not about JSON stays "other".
    expect(toModelApiError(new SyntaxError("Invalid regular expression"), ctx).kind).toBe("other");
  });
  it("does not copy the body excerpt V8 quotes into the message, nor a secret", () => {
    const e = toModelApiError(
      new SyntaxError(`Unexpected token '<', "<html>sk-planted-secret-123456"... is not valid JSON`),
      ctx,
    );
    expect(e.kind).toBe("network");
    expect(e.message).toBe(
      "openai (gpt-x): the response body was cut off or is not valid JSON (Unexpected token '<')",
    );
    expect(e.message).not.toContain("sk-planted");
  });
  it("nonJsonBodyError: the SDKs' raw text or undefined (non-JSON content-type, empty body) → network", () => {
    expect(nonJsonBodyError(ctx, undefined)?.kind).toBe("network");
    expect(nonJsonBodyError(ctx, "")?.message).toMatch(/response body was empty/);
    const html = nonJsonBodyError(ctx, "<html>Bad gateway</html>");
    expect([html?.kind, html?.retryable]).toEqual(["network", true]);
    expect(html?.message).toMatch(/response body is not valid JSON \(24 characters of non-JSON text\)/);
    expect(html?.message).not.toContain("Bad gateway");
    expect(nonJsonBodyError(ctx, { choices: [] })).toBeUndefined();
  });

  it("both providers, against a proxy that answers 200 with a cut-off, non-JSON, empty or odd body", async () => {
    // What a broken proxy or gateway can send; the wire server only speaks the real formats.
    const bodies: Record<string, (res: ServerResponse) => void> = {
      cut: (res) => {
        const b = '{"id":"x","choices":[{"index":0,"message":{"content":"hel';
        res.writeHead(200, { "content-type": "application/json", "content-length": String(b.length) });
        res.end(b);
      },
      htmlAsJson: (res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("<html>bad gateway</html>");
      },
      html: (res) => {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<html>bad gateway</html>");
      },
      empty: (res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": "0" });
        res.end();
      },
      // Valid JSON of the wrong shape is the server's fault, not the transport's.
      shapeless: (res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"hello":"world"}');
      },
    };
    let mode = "cut";
    const proxy = createServer((req, res) => {
      req.resume();
      req.on("end", () => bodies[mode](res));
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const key = "sk-proxy-test-key-0123456789";
    try {
      const apis = [
        createModelApi({ provider: "openai", model: "m", baseUrl: `${url}/v1`, apiKeyEnv: "K" }, { K: key }),
        createModelApi({ provider: "anthropic", model: "m", baseUrl: url, apiKeyEnv: "K" }, { K: key }),
      ];
      const seen: Record<string, string[]> = {};
      for (mode of Object.keys(bodies)) {
        seen[mode] = [];
        for (const api of apis) {
          const err = await api
            .chat({ messages: [{ role: "user", content: "hi" }], params: {}, n: 1, timeoutMs: 5000 })
            .then(
              () => new Error("expected a failure"),
              (e: unknown) => e,
            );
          expect(err).toBeInstanceOf(ModelApiError);
          const me = err as ModelApiError;
          expect(me.retryable).toBe(true);
          expect(me.message).not.toContain(key);
          seen[mode].push(`${me.kind}: ${me.message.replace(/^\w+ \(m\): /, "")}`);
        }
      }
      const cutOff = /^network: the response body was cut off or is not valid JSON \(/;
      for (const m of ["cut", "htmlAsJson"]) for (const s of seen[m]) expect(s).toMatch(cutOff);
      for (const s of seen.html) expect(s).toMatch(/^network: the response body is not valid JSON/);
      for (const s of seen.empty) expect(s).toMatch(/^network: the response body was empty/);
      expect(seen.shapeless).toEqual([
        "server: malformed response: no choices array",
        "server: malformed response: no content array",
      ]);
    } finally {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});
