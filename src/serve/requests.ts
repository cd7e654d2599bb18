/**
 * The request bodies `emlab serve` accepts, as zod schemas (the source of truth for what is
 * honoured): the OpenAI Chat Completions and legacy Completions fields the engine can do, plus
 * `top_k` as vLLM takes it. A field OpenAI has but the engine cannot honour is refused by name
 * rather than dropped, since a silently ignored sampling setting would change an experiment.
 */
import { z } from "zod";
import type { ChatMessage, SamplingParams } from "../models/types.ts";
import { badRequest } from "./errors.ts";

const textPart = z.object({ type: z.literal("text"), text: z.string() }).strict();
const content = z.union([z.string(), z.array(textPart)]);

const message = z
  .object({
    role: z.enum(["system", "developer", "user", "assistant"]),
    content,
    name: z.string().optional(),
  })
  .strict();

/** Only the neutral value of a penalty: the engine has no penalties. */
const zeroOnly = z.literal(0).nullish();

const sampling = {
  model: z.string().min(1),
  n: z.number().int().min(1).max(128).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).strict().nullish(),
  presence_penalty: zeroOnly,
  frequency_penalty: zeroOnly,
  user: z.string().optional(),
};

export const ChatBodySchema = z
  .object({
    ...sampling,
    messages: z.array(message).min(1),
    max_completion_tokens: z.number().int().min(1).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(20).nullish(),
    response_format: z
      .object({ type: z.literal("text") })
      .strict()
      .nullish(),
  })
  .strict();
export type ChatBody = z.infer<typeof ChatBodySchema>;

export const CompletionBodySchema = z
  .object({
    ...sampling,
    prompt: z.union([z.string(), z.array(z.string()).min(1)]),
    /** Legacy API: how many top alternatives per token (0-5); absent = no logprobs. */
    logprobs: z.number().int().min(0).max(5).nullish(),
    echo: z.literal(false).nullish(),
    best_of: z.literal(1).nullish(),
  })
  .strict();
export type CompletionBody = z.infer<typeof CompletionBodySchema>;

/** `messages[0].content` from a zod path. */
function paramName(path: readonly PropertyKey[]): string | null {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? String(p) : `.${String(p)}`;
  return out === "" ? null : out;
}

/** Parses a body or throws a 400 naming the first wrong field, as OpenAI does. */
export function parseBody<T>(schema: z.ZodType<T>, raw: unknown): T {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw badRequest("The request body must be a JSON object.");
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0];
    const param = paramName([...issue.path, key]);
    throw badRequest(
      `Unrecognized request argument supplied: ${param} (this server cannot honour it)`,
      param,
      "unknown_parameter",
    );
  }
  const param = paramName(issue.path);
  const value = issue.path.reduce<unknown>(
    (o, k) => (o !== null && typeof o === "object" ? (o as Record<PropertyKey, unknown>)[k] : undefined),
    raw,
  );
  const shown = value === undefined ? "missing" : JSON.stringify(value)?.slice(0, 80);
  throw badRequest(
    `Invalid value for '${param ?? "body"}' (${shown}): ${issue.message}`,
    param,
    value === undefined ? "missing_required_parameter" : "invalid_value",
  );
}

const text = (c: z.infer<typeof content>) => (typeof c === "string" ? c : c.map((p) => p.text).join(""));

/** The chat body's messages as the ModelApi takes them (developer is OpenAI's new name for system). */
export function chatMessages(body: ChatBody): ChatMessage[] {
  return body.messages.map((m) => ({
    role: m.role === "developer" ? "system" : m.role,
    content: text(m.content),
  }));
}

/** The sampling fields shared by both endpoints, as SamplingParams (absent stays absent). */
export function samplingParams(
  body: ChatBody | CompletionBody,
  maxTokens: number | null | undefined,
): SamplingParams {
  const p: SamplingParams = {};
  if (body.temperature != null) p.temperature = body.temperature;
  if (body.top_p != null) p.top_p = body.top_p;
  if (body.top_k != null) p.top_k = body.top_k;
  if (maxTokens != null) p.max_tokens = maxTokens;
  if (body.stop != null) {
    const stop = typeof body.stop === "string" ? [body.stop] : body.stop;
    if (stop.length > 0) p.stop = stop;
  }
  return p;
}

/** Chat: max_completion_tokens is the new name of max_tokens; both given must agree. */
export function chatParams(body: ChatBody): SamplingParams {
  if (
    body.max_tokens != null &&
    body.max_completion_tokens != null &&
    body.max_tokens !== body.max_completion_tokens
  )
    throw badRequest(
      "max_tokens and max_completion_tokens disagree; send one of them",
      "max_completion_tokens",
    );
  const p = samplingParams(body, body.max_completion_tokens ?? body.max_tokens);
  if (body.top_logprobs != null && body.logprobs !== true)
    throw badRequest("top_logprobs needs logprobs: true", "top_logprobs");
  if (body.logprobs === true) {
    p.logprobs = true;
    if (body.top_logprobs != null) p.top_logprobs = body.top_logprobs;
  }
  return p;
}
