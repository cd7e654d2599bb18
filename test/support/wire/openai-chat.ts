// OpenAI `POST /v1/chat/completions`: request validation with OpenAI's error wording
// and codes, and the exact `chat.completion` response shape (logprobs included).

import type { LogprobsFormat } from "./context.ts";
import { HttpError, isObject, type ServerState } from "./context.ts";
import { hexOf } from "./random.ts";
import { type ChatTurn, complete, promptTokenCount, type RespondContext } from "./text.ts";

/** OpenAI's error envelope. */
export function openaiError(
  status: number,
  message: string,
  type: string | null,
  param: string | null = null,
  code: string | null = null,
  headers: Record<string, string> = {},
): HttpError {
  return new HttpError(status, { error: { message, type, param, code } }, headers);
}

const invalid = (message: string, param: string | null = null, code: string | null = null) =>
  openaiError(400, message, "invalid_request_error", param, code);

const ROLES = ["system", "assistant", "user", "function", "tool", "developer"] as const;

// Parameters the real endpoint takes; anything else is "Unrecognized request argument".
const KNOWN_PARAMS = new Set([
  "model",
  "messages",
  "n",
  "seed",
  "temperature",
  "top_p",
  "max_tokens",
  "max_completion_tokens",
  "stop",
  "logprobs",
  "top_logprobs",
  "frequency_penalty",
  "presence_penalty",
  "logit_bias",
  "user",
  "stream",
  "stream_options",
  "response_format",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "functions",
  "function_call",
  "metadata",
  "store",
  "service_tier",
  "reasoning_effort",
  "modalities",
  "prediction",
  "audio",
  "web_search_options",
  "verbosity",
  "safety_identifier",
  "prompt_cache_key",
]);

function numberParam(
  body: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
  integer: boolean,
) {
  const v = body[name];
  if (v === undefined || v === null) return null;
  const kind = integer ? "integer" : "decimal";
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw invalid(
      `Invalid type for '${name}': expected ${integer ? "an integer" : "a decimal"}, but got ${typeof v} instead.`,
      name,
      `invalid_type`,
    );
  }
  if (v < min) {
    throw invalid(
      `Invalid '${name}': ${kind} below minimum value. Expected a value >= ${min}, but got ${v} instead.`,
      name,
      `${kind}_below_min_value`,
    );
  }
  if (v > max) {
    throw invalid(
      `Invalid '${name}': ${kind} above maximum value. Expected a value <= ${max}, but got ${v} instead.`,
      name,
      `${kind}_above_max_value`,
    );
  }
  return v;
}

function contentText(content: unknown, param: string): string {
  if (typeof content === "string") return content;
  if (content === null || content === undefined) return "";
  if (!Array.isArray(content)) {
    throw invalid(
      `Invalid type for '${param}': expected one of a string or array of objects.`,
      param,
      "invalid_type",
    );
  }
  return content
    .map((part, i) => {
      if (!isObject(part) || typeof part.type !== "string") {
        throw invalid(
          `Missing required parameter: '${param}[${i}].type'.`,
          `${param}[${i}].type`,
          "missing_required_parameter",
        );
      }
      if (part.type === "text") {
        if (typeof part.text !== "string") {
          throw invalid(
            `Missing required parameter: '${param}[${i}].text'.`,
            `${param}[${i}].text`,
            "missing_required_parameter",
          );
        }
        return part.text;
      }
      return ""; // images, audio, files carry no words for our purposes
    })
    .join("\n");
}

/** Validated chat request, normalised. */
export interface ChatRequest {
  model: string;
  messages: ChatTurn[];
  n: number;
  seed: number | null;
  temperature: number | null;
  maxTokens: number | null;
  stops: string[];
  logprobs: boolean;
  topLogprobs: number;
}

export function parseChatRequest(state: ServerState, body: unknown): ChatRequest {
  if (!isObject(body)) {
    throw invalid(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    );
  }
  for (const key of Object.keys(body)) {
    if (!KNOWN_PARAMS.has(key)) throw invalid(`Unrecognized request argument supplied: ${key}`);
  }
  if (body.model === undefined || body.model === null || body.model === "") {
    throw invalid("you must provide a model parameter");
  }
  if (typeof body.model !== "string") {
    throw invalid("Invalid type for 'model': expected a string.", "model", "invalid_type");
  }
  if (body.messages === undefined) {
    throw invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
  }
  if (!Array.isArray(body.messages)) {
    throw invalid("Invalid type for 'messages': expected an array of objects.", "messages", "invalid_type");
  }
  if (body.messages.length === 0) {
    throw invalid(
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      "messages",
      "empty_array",
    );
  }
  const messages: ChatTurn[] = body.messages.map((m, i) => {
    const param = `messages[${i}]`;
    if (!isObject(m))
      throw invalid(`Invalid type for '${param}': expected an object.`, param, "invalid_type");
    if (m.role === undefined) {
      throw invalid(
        `Missing required parameter: '${param}.role'.`,
        `${param}.role`,
        "missing_required_parameter",
      );
    }
    if (!ROLES.includes(m.role as (typeof ROLES)[number])) {
      throw invalid(
        `Invalid value: '${String(m.role)}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`,
        `${param}.role`,
        "invalid_value",
      );
    }
    if (m.content === undefined && m.role !== "assistant") {
      throw invalid(
        `Missing required parameter: '${param}.content'.`,
        `${param}.content`,
        "missing_required_parameter",
      );
    }
    return { role: m.role as ChatTurn["role"], content: contentText(m.content, `${param}.content`) };
  });
  if (body.stream === true) {
    throw invalid("wire-server: stream=true is not implemented; send stream=false or omit it.", "stream");
  }
  const n = numberParam(body, "n", 1, 128, true) ?? 1;
  const seed = numberParam(body, "seed", -(2 ** 63), 2 ** 63, true);
  const temperature = numberParam(body, "temperature", 0, 2, false);
  numberParam(body, "top_p", 0, 1, false);
  numberParam(body, "frequency_penalty", -2, 2, false);
  numberParam(body, "presence_penalty", -2, 2, false);
  const maxTokens = numberParam(body, "max_tokens", 1, 1_000_000, true);
  const maxCompletion = numberParam(body, "max_completion_tokens", 1, 1_000_000, true);
  if (maxTokens !== null && maxCompletion !== null) {
    throw invalid(
      "Invalid request: 'max_tokens' and 'max_completion_tokens' cannot both be set; use 'max_completion_tokens'.",
      "max_tokens",
      "invalid_value",
    );
  }
  let stops: string[] = [];
  if (typeof body.stop === "string") stops = [body.stop];
  else if (Array.isArray(body.stop)) {
    if (body.stop.length > 4) {
      throw invalid(
        `Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length ${body.stop.length} instead.`,
        "stop",
        "array_above_max_length",
      );
    }
    body.stop.forEach((s, i) => {
      if (typeof s !== "string") {
        throw invalid(`Invalid type for 'stop[${i}]': expected a string.`, `stop[${i}]`, "invalid_type");
      }
    });
    stops = body.stop as string[];
  } else if (body.stop !== undefined && body.stop !== null) {
    throw invalid(
      "Invalid type for 'stop': expected one of a string or array of strings.",
      "stop",
      "invalid_type",
    );
  }
  if (body.logprobs !== undefined && body.logprobs !== null && typeof body.logprobs !== "boolean") {
    throw invalid("Invalid type for 'logprobs': expected a boolean.", "logprobs", "invalid_type");
  }
  const logprobs = body.logprobs === true;
  const topLogprobs = numberParam(body, "top_logprobs", 0, 20, true);
  if (topLogprobs !== null && !logprobs) {
    throw invalid(
      "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is specified.",
      "top_logprobs",
      "invalid_value",
    );
  }
  const { models, contentFilterMarker } = state.opts;
  if (models && !models.includes(body.model) && !state.fineTunedModels.has(body.model)) {
    throw openaiError(
      404,
      `The model \`${body.model}\` does not exist or you do not have access to it.`,
      "invalid_request_error",
      null,
      "model_not_found",
    );
  }
  if (contentFilterMarker && messages.some((m) => m.content.includes(contentFilterMarker))) {
    throw invalid(
      "The response was filtered due to the prompt triggering the content management policy. Please modify your prompt and retry.",
      "prompt",
      "content_filter",
    );
  }
  return {
    model: body.model,
    messages,
    n,
    seed,
    temperature,
    maxTokens: maxCompletion ?? maxTokens,
    stops,
    logprobs,
    topLogprobs: topLogprobs ?? 0,
  };
}

const FINISH = { natural: "stop", stop: "stop", length: "length", filter: "content_filter" } as const;

const bytesOf = (s: string) => [...Buffer.from(s, "utf8")];

/** Build the `chat.completion` object for a validated request. */
export function chatCompletion(
  state: ServerState,
  req: ChatRequest,
  batch: boolean,
  headers?: Record<string, string>,
) {
  let completionTokens = 0;
  const format = state.opts.logprobsFormat ?? "openai";
  const native: unknown[] = [];
  const choices = Array.from({ length: req.n }, (_, index) => {
    const ctx: RespondContext = {
      api: "openai",
      model: req.model,
      messages: req.messages,
      seed: req.seed,
      index,
      temperature: req.temperature,
      maxTokens: req.maxTokens,
      batch,
      headers,
    };
    const out = complete(
      { ctx, stops: req.stops, topLogprobs: req.topLogprobs, filterMarker: state.opts.contentFilterMarker },
      state.opts.respond,
    );
    completionTokens += out.completionTokens;
    if (req.logprobs && format === "llamacpp-native" && index === 0) native.push(...nativeProbs(out.tokens));
    return {
      index,
      message: { role: "assistant", content: out.text, refusal: null, annotations: [] },
      logprobs: req.logprobs ? choiceLogprobs(format, out.tokens, req.topLogprobs ?? 0) : null,
      finish_reason: FINISH[out.finish],
    };
  });
  const promptTokens = promptTokenCount(req.messages);
  return {
    id: state.newId("chatcmpl-", 29),
    object: "chat.completion",
    created: state.now(),
    model: req.model,
    choices,
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: "default",
    system_fingerprint: `fp_${hexOf(`fingerprint:${req.model}`, 10)}`,
    ...(format === "llamacpp-native" && req.logprobs ? { completion_probabilities: native } : {}),
  };
}

type WireToken = { token: string; logprob: number; top: Array<{ token: string; logprob: number }> };

/** vLLM's floor for -inf (JSON has no infinity). */
const NEG_INF_FLOOR = -9999.0;

/** A byte-level BPE piece: the leading space written as "Ġ", as a tokenizer's raw vocabulary has it. */
const bpePiece = (t: string) => t.replace(/^ /, "\u0120");

/**
 * `choice.logprobs` in the shape the chosen server sends (WireServerOptions.logprobsFormat):
 * OpenAI's `{content: [{token, logprob, bytes, top_logprobs}], refusal}`; vLLM's (the same,
 * top_logprobs padded to the count asked with -9999.0 entries, its floor for -inf); SGLang's
 * and Ollama's (the same with `bytes: null` / without refusal); llama.cpp server's (an `id` per
 * token); "bpe-pieces" (raw tokenizer pieces, "Ġ80", and no bytes); "none" (null, a server
 * that drops the field); "llamacpp-native" (null here: the probabilities are on the body).
 */
function choiceLogprobs(format: LogprobsFormat, tokens: WireToken[], topN: number) {
  const idOf = (t: string) => Number.parseInt(hexOf(`token:${t}`, 6), 16) % 150000;
  switch (format) {
    case "none":
    case "llamacpp-native":
      return null;
    case "vllm":
      return {
        content: tokens.map((t) => {
          const top = t.top.map((a) => ({
            token: a.token,
            logprob: Math.max(a.logprob, NEG_INF_FLOOR),
            bytes: bytesOf(a.token),
          }));
          for (let k = 0; top.length < topN; k++)
            top.push({
              token: `<|reserved_${k}|>`,
              logprob: NEG_INF_FLOOR,
              bytes: bytesOf(`<|reserved_${k}|>`),
            });
          return {
            token: t.token,
            logprob: Math.max(t.logprob, NEG_INF_FLOOR),
            bytes: bytesOf(t.token),
            top_logprobs: top,
          };
        }),
      };
    case "sglang":
      return {
        content: tokens.map((t) => ({
          token: t.token,
          bytes: null,
          logprob: t.logprob,
          top_logprobs: t.top.map((a) => ({ token: a.token, bytes: null, logprob: a.logprob })),
        })),
      };
    case "ollama":
      return {
        content: tokens.map((t) => ({
          token: t.token,
          logprob: t.logprob,
          bytes: bytesOf(t.token),
          top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: bytesOf(a.token) })),
        })),
      };
    case "llamacpp":
      return {
        content: tokens.map((t) => ({
          id: idOf(t.token),
          token: t.token,
          bytes: bytesOf(t.token),
          logprob: t.logprob,
          top_logprobs: t.top.map((a) => ({
            id: idOf(a.token),
            token: a.token,
            bytes: bytesOf(a.token),
            logprob: a.logprob,
          })),
        })),
      };
    case "bpe-pieces":
      return {
        content: tokens.map((t) => ({
          token: bpePiece(t.token),
          logprob: t.logprob,
          bytes: null,
          top_logprobs: t.top.map((a) => ({ token: bpePiece(a.token), logprob: a.logprob, bytes: null })),
        })),
        refusal: null,
      };
    default:
      return {
        content: tokens.map((t) => ({
          token: t.token,
          logprob: t.logprob,
          bytes: bytesOf(t.token),
          top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: bytesOf(a.token) })),
        })),
        refusal: null,
      };
  }
}

/** llama.cpp server's pre-OAI-compatible `completion_probabilities` (probabilities, not logs). */
function nativeProbs(tokens: WireToken[]) {
  return tokens.map((t) => ({
    content: t.token,
    probs: t.top.map((a) => ({ tok_str: a.token, prob: Math.exp(a.logprob) })),
  }));
}
