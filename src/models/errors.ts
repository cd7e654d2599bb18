/**
 * Turning provider SDK failures (openai, @anthropic-ai/sdk) into `ModelApiError`s, so the
 * scheduler decides retries in one place. Both SDKs are Stainless-generated and share an
 * error shape (status, headers, error body, requestID), so one duck-typed mapping serves both.
 *
 * Secrets: the raw SDK error is never attached as `cause` (its response headers and body
 * can echo credentials), and every message passes through `redactSecrets`.
 */
import { ModelApiError, type ModelErrorKind } from "./types.ts";

/** Describes who failed, for messages, and which strings must never appear in them. */
export interface ErrorContext {
  provider: string;
  model?: string;
  /** Values (API keys) to scrub from every message. */
  secrets?: readonly string[];
}

// Patterns that look like credentials even when we were not told the exact value
// (e.g. a server echoing a partially masked key, or a bearer header in a proxy's error page).
const CREDENTIAL_PATTERNS: readonly RegExp[] = [
  /\b(sk|pk|rk)-[A-Za-z0-9_*-]{8,}/g,
  /\bBearer\s+[^\s"',;]+/gi,
];

export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) {
    // Short strings would redact ordinary words; real keys are long.
    if (s && s.length >= 6) out = out.split(s).join("[redacted]");
  }
  for (const re of CREDENTIAL_PATTERNS) out = out.replace(re, "[redacted]");
  return out;
}

type HeaderSource = Headers | Record<string, string | string[] | undefined> | null | undefined;

function getHeader(headers: HeaderSource, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const rec = headers as Record<string, string | string[] | undefined>;
  for (const [k, v] of Object.entries(rec)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/**
 * How long the server asks us to wait, in ms: `retry-after-ms` (OpenAI's, fractional ms),
 * else `retry-after` as delay-seconds or an HTTP-date. Undefined when absent or unparseable.
 */
export function parseRetryAfterMs(headers: HeaderSource, now: number = Date.now()): number | undefined {
  const ms = getHeader(headers, "retry-after-ms")?.trim();
  if (ms && /^\d+(\.\d+)?$/.test(ms)) return Math.round(Number(ms));
  const ra = getHeader(headers, "retry-after")?.trim();
  if (!ra) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra)) return Math.round(Number(ra) * 1000);
  const at = Date.parse(ra);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

const CONTENT_FILTER_RE = /content[_ -]?(filter|policy|management)|safety system|flagged|moderation/i;

/** HTTP status (and the provider's error code/type/message) → error kind. */
export function kindForStatus(status: number, codeOrMessage = ""): ModelErrorKind {
  if (status === 429) return "rate_limit";
  if (status === 408) return "timeout";
  if (status >= 500) return "server"; // 500, 502, 503, 504, Anthropic's 529 overloaded, ...
  if (status === 401 || status === 403) return "auth";
  if (status === 404) return "not_found";
  if (status === 400 || status === 413 || status === 422) {
    return CONTENT_FILTER_RE.test(codeOrMessage) ? "content_filter" : "bad_request";
  }
  return "other";
}

/** Anthropic error `type` (as in batch results and error bodies) → error kind. */
export function kindForAnthropicType(type: string | undefined, message = ""): ModelErrorKind {
  switch (type) {
    case "invalid_request_error":
      return CONTENT_FILTER_RE.test(message) ? "content_filter" : "bad_request";
    case "authentication_error":
    case "permission_error":
      return "auth";
    case "not_found_error":
      return "not_found";
    case "rate_limit_error":
      return "rate_limit";
    case "api_error":
    case "overloaded_error":
      return "server";
    case "timeout_error":
      return "timeout";
    default:
      return "other";
  }
}

// Node/undici socket failures that mean "the connection broke", found anywhere in a cause chain.
export const NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

interface SdkErrorLike {
  name?: string;
  message?: string;
  status?: number;
  headers?: HeaderSource;
  error?: unknown;
  code?: unknown;
  type?: unknown;
  requestID?: string | null;
  cause?: unknown;
}

/** "ECONNRESET: other side closed" style summary of an error's cause chain (bounded depth). */
function describeCauseChain(err: unknown): { text: string; codes: string[] } {
  const parts: string[] = [];
  const codes: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 5; depth++) {
    const e = cur as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof e.code === "string") codes.push(e.code);
    const msg = typeof e.message === "string" ? e.message : String(cur);
    parts.push(typeof e.code === "string" && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg);
    cur = e.cause;
  }
  return { text: parts.join(" <- "), codes };
}

/** The provider's own error message from an SDK error body (OpenAI: body is the `error` object; Anthropic: the whole body). */
function providerMessage(e: SdkErrorLike): { message?: string; code?: string; type?: string } {
  const body = e.error as Record<string, unknown> | undefined;
  if (!body || typeof body !== "object") return {};
  const inner = (body.error && typeof body.error === "object" ? body.error : body) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  return { message: str(inner.message), code: str(inner.code), type: str(inner.type) };
}

function prefix(ctx: ErrorContext): string {
  return ctx.model ? `${ctx.provider} (${ctx.model})` : ctx.provider;
}

/** Build a ModelApiError whose message is scrubbed of the context's secrets. */
export function modelError(
  kind: ModelErrorKind,
  ctx: ErrorContext,
  detail: string,
  opts: { status?: number; retryAfterMs?: number } = {},
): ModelApiError {
  return new ModelApiError(kind, redactSecrets(`${prefix(ctx)}: ${detail}`, ctx.secrets), opts);
}

/**
 * The parse error's own words without the body excerpt V8 quotes into some of them
 * (`Unexpected token '<', "<html>..."... is not valid JSON`): the body is the server's, not ours
 * to copy into logs.
 */
function jsonErrorReason(message: string): string {
  const quote = message.indexOf('"');
  const reason = (quote >= 0 ? message.slice(0, quote) : message).replace(/[\s,:]+$/, "");
  return reason.slice(0, 200) || "not valid JSON";
}

/** The JSON parse failure (SyntaxError) an SDK let through when it read a response body, if any. */
function jsonParseFailure(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 5; depth++) {
    const e = cur as { name?: unknown; message?: unknown; cause?: unknown };
    const name = typeof e.name === "string" ? e.name : (cur as object).constructor?.name;
    if (name === "SyntaxError" && typeof e.message === "string" && /JSON/.test(e.message)) {
      return jsonErrorReason(e.message);
    }
    cur = e.cause;
  }
  return undefined;
}

/**
 * A 2xx answer whose body the SDK could not give us as JSON, as a transport fault: the SDKs
 * (openai, @anthropic-ai/sdk) hand back the raw text when the content-type is not JSON, and
 * undefined for an empty body. Undefined when `body` is a JSON value.
 */
export function nonJsonBodyError(ctx: ErrorContext, body: unknown): ModelApiError | undefined {
  if (body === undefined || body === null || body === "") {
    return modelError("network", ctx, "the response body was empty (a JSON body was expected)");
  }
  if (typeof body === "string") {
    return modelError(
      "network",
      ctx,
      `the response body is not valid JSON (${body.length} characters of non-JSON text)`,
    );
  }
  return undefined;
}

/**
 * Map anything a provider call threw onto a ModelApiError. `deadline` says whether our own
 * per-request deadline fired (then an abort is a timeout, not the user's abort).
 */
export function toModelApiError(
  err: unknown,
  ctx: ErrorContext,
  deadline?: { expired: boolean },
): ModelApiError {
  if (err instanceof ModelApiError) return err;
  const e = (err ?? {}) as SdkErrorLike;
  const name = typeof e.name === "string" ? e.name : "";
  const ctorName = (err as object | null)?.constructor?.name ?? "";
  const isA = (n: string) => name === n || ctorName === n;

  if (deadline?.expired) return modelError("timeout", ctx, "request timed out (deadline reached)");
  if (isA("APIConnectionTimeoutError") || isA("TimeoutError")) {
    return modelError("timeout", ctx, "request timed out");
  }
  if (isA("APIUserAbortError") || isA("AbortError")) return modelError("aborted", ctx, "request aborted");

  if (typeof e.status === "number") {
    const pm = providerMessage(e);
    const tag = [pm.type, pm.code].filter(Boolean).join("/");
    const kind = kindForStatus(e.status, `${pm.code ?? ""} ${pm.type ?? ""} ${pm.message ?? ""}`);
    const retryAfterMs =
      kind === "rate_limit" || kind === "server" ? parseRetryAfterMs(e.headers) : undefined;
    const requestId =
      e.requestID ?? getHeader(e.headers, "x-request-id") ?? getHeader(e.headers, "request-id");
    const detail =
      `HTTP ${e.status}${tag ? ` ${tag}` : ""}: ${pm.message ?? "(no error message in body)"}` +
      (requestId ? ` (request id ${requestId})` : "");
    return modelError(kind, ctx, detail, { status: e.status, retryAfterMs });
  }

  // The SDKs parse a 2xx body with response.json() and let its SyntaxError through unwrapped:
  // a body cut off part-way (a proxy or server that ended it early) or otherwise not JSON. A
  // transport fault like a dropped connection, and retried like one.
  const parseFailure = jsonParseFailure(err);
  if (parseFailure !== undefined) {
    return modelError("network", ctx, `the response body was cut off or is not valid JSON (${parseFailure})`);
  }

  const chain = describeCauseChain(err);
  if (
    isA("APIConnectionError") ||
    chain.codes.some((c) => NETWORK_CODES.has(c)) ||
    /fetch failed/.test(chain.text)
  ) {
    const timeoutCode = chain.codes.find((c) => /TIMEOUT|ETIMEDOUT/.test(c));
    return modelError(timeoutCode ? "timeout" : "network", ctx, `connection failed: ${chain.text}`);
  }
  return modelError("other", ctx, `unexpected error: ${chain.text}`);
}

/**
 * Run one SDK call under the request's abort signal and an overall deadline, mapping any
 * failure. The deadline is ours, not only the SDK's, because the SDKs' own timeout stops at
 * the response headers: a server that stalls mid-body would otherwise hang the request.
 */
export async function callMapped<T>(
  ctx: ErrorContext,
  opts: { signal?: AbortSignal; timeoutMs?: number },
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (opts.signal?.aborted) throw modelError("aborted", ctx, "request aborted before it was sent");
  const controller = new AbortController();
  const deadline = { expired: false };
  const onAbort = () => controller.abort(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const timer =
    opts.timeoutMs !== undefined && opts.timeoutMs > 0
      ? setTimeout(() => {
          deadline.expired = true;
          controller.abort(new Error("deadline"));
        }, opts.timeoutMs)
      : undefined;
  try {
    return await fn(controller.signal);
  } catch (err) {
    // A caller's AbortSignal.timeout() is a timeout too, not a deliberate cancel.
    const callerTimeout = (opts.signal?.reason as { name?: string } | undefined)?.name === "TimeoutError";
    throw toModelApiError(err, ctx, { expired: deadline.expired || callerTimeout });
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}
