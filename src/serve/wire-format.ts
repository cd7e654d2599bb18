/**
 * ChatResponse (the ModelApi's answer) as OpenAI's wire objects: chat.completion and its
 * stream chunks, text_completion (legacy) and its chunks. Field names and nesting follow the
 * official API, so the openai SDK's types describe what this server sends.
 */
import type { ChatResponse, TokenLogprob } from "../models/types.ts";

const bytes = (s: string) => [...Buffer.from(s, "utf8")];

function chatLogprobs(lps: TokenLogprob[] | undefined) {
  if (!lps) return null;
  return {
    content: lps.map((t) => ({
      token: t.token,
      logprob: t.logprob,
      bytes: bytes(t.token),
      top_logprobs: (t.top ?? []).map((a) => ({ token: a.token, logprob: a.logprob, bytes: bytes(a.token) })),
    })),
    refusal: null,
  };
}

function usage(r: ChatResponse) {
  const { promptTokens, completionTokens } = r.usage;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

export interface WireMeta {
  id: string;
  created: number;
  model: string;
}

export function chatCompletion(meta: WireMeta, r: ChatResponse) {
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    system_fingerprint: null,
    choices: r.completions.map((c, index) => ({
      index,
      message: { role: "assistant", content: c.text, refusal: null },
      logprobs: chatLogprobs(c.logprobs),
      finish_reason: c.finishReason,
    })),
    usage: usage(r),
  };
}

/**
 * The chunks of a streamed chat completion: per choice a role chunk, one content chunk (the
 * engine makes the whole answer in one synchronous call, so there is nothing earlier to send)
 * and a finish chunk; then, when asked, a usage chunk with no choices.
 */
export function chatChunks(meta: WireMeta, r: ChatResponse, includeUsage: boolean): object[] {
  const base = { id: meta.id, object: "chat.completion.chunk", created: meta.created, model: meta.model };
  const withUsage = includeUsage ? { usage: null } : {};
  const chunk = (index: number, delta: object, extra: { logprobs?: unknown; finish_reason?: string }) => ({
    ...base,
    system_fingerprint: null,
    choices: [{ index, delta, logprobs: extra.logprobs ?? null, finish_reason: extra.finish_reason ?? null }],
    ...withUsage,
  });
  const out: object[] = [];
  r.completions.forEach((c, i) => {
    out.push(chunk(i, { role: "assistant", content: "", refusal: null }, {}));
    if (c.text !== "" || c.logprobs)
      out.push(chunk(i, { content: c.text }, { logprobs: chatLogprobs(c.logprobs) }));
    out.push(chunk(i, {}, { finish_reason: c.finishReason }));
  });
  if (includeUsage) out.push({ ...base, system_fingerprint: null, choices: [], usage: usage(r) });
  return out;
}

/** Legacy completions' logprobs: parallel lists, top alternatives as {token: logprob}. */
function textLogprobs(text: string, lps: TokenLogprob[] | undefined) {
  if (!lps) return null;
  // Where each token's text starts in the answer (tokenizers may put spaces between them).
  const offsets: number[] = [];
  let at = 0;
  for (const t of lps) {
    const found = text.indexOf(t.token, at);
    offsets.push(found >= 0 ? found : at);
    if (found >= 0) at = found + t.token.length;
  }
  return {
    tokens: lps.map((t) => t.token),
    token_logprobs: lps.map((t) => t.logprob),
    top_logprobs: lps.map((t) => Object.fromEntries((t.top ?? []).map((a) => [a.token, a.logprob]))),
    text_offset: offsets,
  };
}

/** `responses` in prompt order; choice index = prompt index · n + sample index, as OpenAI numbers them. */
export function textCompletion(meta: WireMeta, responses: ChatResponse[]) {
  const choices = responses.flatMap((r, p) =>
    r.completions.map((c, i) => ({
      index: p * r.completions.length + i,
      text: c.text,
      logprobs: textLogprobs(c.text, c.logprobs),
      finish_reason: c.finishReason,
    })),
  );
  return {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    system_fingerprint: null,
    choices,
    usage: usage(sumUsage(responses)),
  };
}

export function sumUsage(responses: ChatResponse[]): ChatResponse {
  return {
    completions: responses.flatMap((r) => r.completions),
    usage: {
      promptTokens: responses.reduce((a, r) => a + r.usage.promptTokens, 0),
      completionTokens: responses.reduce((a, r) => a + r.usage.completionTokens, 0),
    },
  };
}

export function textChunks(meta: WireMeta, responses: ChatResponse[], includeUsage: boolean): object[] {
  const whole = textCompletion(meta, responses);
  const base = { id: meta.id, object: "text_completion", created: meta.created, model: meta.model };
  const withUsage = includeUsage ? { usage: null } : {};
  const out: object[] = [];
  for (const c of whole.choices) {
    out.push({ ...base, choices: [{ ...c, finish_reason: null }], ...withUsage });
    out.push({
      ...base,
      choices: [{ index: c.index, text: "", logprobs: null, finish_reason: c.finish_reason }],
      ...withUsage,
    });
  }
  if (includeUsage) out.push({ ...base, choices: [], usage: whole.usage });
  return out;
}
