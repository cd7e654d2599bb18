import type { TokenLogprob, TopLogprob } from "../models/types.ts";

/**
 * Token logprobs of one chat choice as the OpenAI-compatible servers actually send them
 * (docs/battery.md, "Judges and their logprobs"):
 * - OpenAI, vLLM, SGLang, llama.cpp server (since its OAI-compatible logprobs, Dec 2024) and
 *   Ollama (v0.12.11+): `choice.logprobs.content[] = {token, logprob, bytes, top_logprobs[]}`;
 *   llama.cpp adds `id`, SGLang and Ollama may send `bytes: null`; vLLM writes -inf as -9999.0.
 * - the legacy completions shape some servers put on chat choices (llama-cpp-python's server):
 *   `choice.logprobs = {tokens[], token_logprobs[], top_logprobs: [{token: logprob}]}`.
 * - llama.cpp's native shape: `completion_probabilities[] = {token | content, logprob |
 *   prob, top_logprobs[] | probs[] = {token | tok_str, logprob | prob}}` on the body (older
 *   builds returned it on /v1/chat/completions too; `prob` is a probability, not a log;
 *   `post_sampling_probs` gives `prob` and `top_probs[]`).
 * Anything else is no logprobs (undefined): the judge then falls back to the written
 * number, flagged "text". A value that is not a finite number never becomes a logprob.
 */
export function readWireLogprobs(choice: unknown, body?: unknown): TokenLogprob[] | undefined {
  const lp = isObject(choice) ? choice.logprobs : undefined;
  if (isObject(lp) && Array.isArray(lp.content)) return tokenList(lp.content);
  if (isObject(lp) && Array.isArray(lp.tokens)) return legacyCompletions(lp);
  const native =
    isObject(choice) && Array.isArray(choice.completion_probabilities)
      ? choice.completion_probabilities
      : isObject(body) && Array.isArray(body.completion_probabilities)
        ? body.completion_probabilities
        : undefined;
  if (native) return tokenList(native);
  return undefined;
}

/** vLLM (and OpenAI's own docs) write "very unlikely / -inf" as -9999.0. */
export const VLLM_NEG_INF = -9999;

/** A logprob as a number (-inf where the server wrote its -9999 floor), or undefined. */
export function wireLogprob(v: unknown): number | undefined {
  if (typeof v !== "number" || Number.isNaN(v)) return undefined;
  if (v <= VLLM_NEG_INF) return Number.NEGATIVE_INFINITY;
  return v > 0 ? 0 : v;
}

function tokenList(items: unknown[]): TokenLogprob[] | undefined {
  const out: TokenLogprob[] = [];
  for (const t of items) {
    const tops = isObject(t) ? (t.top_logprobs ?? t.top_probs ?? t.probs) : undefined;
    const top = Array.isArray(tops) ? tops.map(alternative).filter((a): a is TopLogprob => !!a) : [];
    // llama.cpp's older native entries carry only `content` and `probs`: the chosen token's
    // logprob is its entry among the alternatives.
    const text = isObject(t) ? tokenText(t) : undefined;
    const one = alternative(t) ?? top.find((a) => a.token === text);
    if (!one) return undefined;
    out.push(top.length ? { ...one, top } : one);
  }
  return out;
}

/** One `{token|tok_str|content, logprob|prob, bytes?}` entry. */
function alternative(t: unknown): TopLogprob | undefined {
  if (!isObject(t)) return undefined;
  const token = tokenText(t);
  if (token === undefined) return undefined;
  const logprob =
    t.logprob !== undefined
      ? wireLogprob(t.logprob)
      : typeof t.prob === "number" && t.prob >= 0 && t.prob <= 1
        ? Math.log(t.prob)
        : undefined;
  return logprob === undefined ? undefined : { token, logprob };
}

/** The token's text: `bytes` (UTF-8) when they decode, else the token string. */
function tokenText(t: Record<string, unknown>): string | undefined {
  const s = [t.token, t.tok_str, t.content].find((v): v is string => typeof v === "string");
  if (Array.isArray(t.bytes) && t.bytes.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    const decoded = new TextDecoder("utf-8", { fatal: false }).decode(Uint8Array.from(t.bytes as number[]));
    // A token that is part of a multi-byte character has bytes but no text of its own.
    if (!decoded.includes("\uFFFD")) return decoded;
  }
  return s;
}

function legacyCompletions(lp: Record<string, unknown>): TokenLogprob[] | undefined {
  const tokens = lp.tokens as unknown[];
  const lps = Array.isArray(lp.token_logprobs) ? lp.token_logprobs : [];
  const tops = Array.isArray(lp.top_logprobs) ? lp.top_logprobs : [];
  const out: TokenLogprob[] = [];
  for (const [i, token] of tokens.entries()) {
    const logprob = wireLogprob(lps[i]);
    if (typeof token !== "string" || logprob === undefined) return undefined;
    const dict = tops[i];
    const top = isObject(dict)
      ? Object.entries(dict).flatMap(([k, v]) => {
          const l = wireLogprob(v);
          return l === undefined ? [] : [{ token: k, logprob: l }];
        })
      : [];
    out.push(top.length ? { token, logprob, top } : { token, logprob });
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
