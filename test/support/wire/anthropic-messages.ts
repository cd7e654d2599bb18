// Anthropic `POST /v1/messages`: validation with Anthropic's error wording and the
// exact `message` response shape.

import { HttpError, isObject, type ServerState } from "./context.ts";
import { type ChatTurn, complete, promptTokenCount } from "./text.ts";

/** Anthropic's error envelope. */
export function anthropicError(
  status: number,
  type: string,
  message: string,
  headers: Record<string, string> = {},
): HttpError {
  return new HttpError(status, { type: "error", error: { type, message } }, headers);
}

const invalid = (message: string) => anthropicError(400, "invalid_request_error", message);

const KNOWN_PARAMS = new Set([
  "model",
  "messages",
  "max_tokens",
  "system",
  "temperature",
  "top_p",
  "top_k",
  "stop_sequences",
  "metadata",
  "stream",
  "tools",
  "tool_choice",
  "thinking",
  "service_tier",
  "container",
  "mcp_servers",
  "context_management",
]);

function textOfBlocks(content: unknown, where: string): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw invalid(`${where}: Input should be a valid list`);
  return content
    .map((block, i) => {
      if (!isObject(block) || typeof block.type !== "string")
        throw invalid(`${where}.${i}.type: Field required`);
      if (block.type === "text") {
        if (typeof block.text !== "string") throw invalid(`${where}.${i}.text: Field required`);
        return block.text;
      }
      if (
        ["image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"].includes(block.type)
      ) {
        return "";
      }
      throw invalid(
        `${where}.${i}: Input tag '${block.type}' found using 'type' does not match any of the expected tags`,
      );
    })
    .join("\n");
}

function numberParam(
  body: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
  integer: boolean,
) {
  const v = body[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw invalid(`${name}: Input should be a valid ${integer ? "integer" : "number"}`);
  }
  if (v < min) throw invalid(`${name}: Input should be greater than or equal to ${min}`);
  if (v > max) throw invalid(`${name}: Input should be less than or equal to ${max}`);
  return v;
}

export interface MessagesRequest {
  model: string;
  /** System first (when given), then the conversation. */
  messages: ChatTurn[];
  maxTokens: number;
  temperature: number | null;
  stops: string[];
}

export function parseMessagesRequest(state: ServerState, body: unknown): MessagesRequest {
  if (!isObject(body)) throw invalid("There was an error parsing the body: expected a JSON object");
  for (const key of Object.keys(body)) {
    if (!KNOWN_PARAMS.has(key)) throw invalid(`${key}: Extra inputs are not permitted`);
  }
  if (body.model === undefined) throw invalid("model: Field required");
  if (typeof body.model !== "string" || body.model === "")
    throw invalid("model: Input should be a valid string");
  if (body.max_tokens === undefined) throw invalid("max_tokens: Field required");
  const maxTokens = numberParam(body, "max_tokens", 1, 1_000_000, true);
  if (maxTokens === null) throw invalid("max_tokens: Input should be a valid integer");
  if (body.messages === undefined) throw invalid("messages: Field required");
  if (!Array.isArray(body.messages)) throw invalid("messages: Input should be a valid list");
  if (body.messages.length === 0) throw invalid("messages: at least one message is required");
  const turns: ChatTurn[] = body.messages.map((m, i) => {
    if (!isObject(m)) throw invalid(`messages.${i}: Input should be a valid dictionary`);
    if (m.role === "system") {
      throw invalid(
        'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.',
      );
    }
    if (m.role !== "user" && m.role !== "assistant") {
      throw invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    }
    if (m.content === undefined) throw invalid(`messages.${i}.content: Field required`);
    return { role: m.role, content: textOfBlocks(m.content, `messages.${i}.content`) };
  });
  if (turns[0].role !== "user") throw invalid('messages: first message must use the "user" role');
  for (let i = 1; i < turns.length; i++) {
    if (turns[i].role === turns[i - 1].role) {
      throw invalid(
        `messages: roles must alternate between "user" and "assistant", but found multiple "${turns[i].role}" roles in a row`,
      );
    }
  }
  let system: string | null = null;
  if (body.system !== undefined && body.system !== null) system = textOfBlocks(body.system, "system");
  if (body.stream === true) throw invalid("wire-server: stream=true is not implemented; omit it.");
  const temperature = numberParam(body, "temperature", 0, 1, false);
  numberParam(body, "top_p", 0, 1, false);
  numberParam(body, "top_k", 0, 1_000_000, true);
  let stops: string[] = [];
  if (body.stop_sequences !== undefined && body.stop_sequences !== null) {
    if (!Array.isArray(body.stop_sequences)) throw invalid("stop_sequences: Input should be a valid list");
    body.stop_sequences.forEach((s, i) => {
      if (typeof s !== "string") throw invalid(`stop_sequences.${i}: Input should be a valid string`);
    });
    stops = body.stop_sequences as string[];
  }
  const { models, contentFilterMarker } = state.opts;
  if (models && !models.includes(body.model))
    throw anthropicError(404, "not_found_error", `model: ${body.model}`);
  const messages: ChatTurn[] = system !== null ? [{ role: "system", content: system }, ...turns] : turns;
  if (contentFilterMarker && messages.some((m) => m.content.includes(contentFilterMarker))) {
    throw invalid("Output blocked by content filtering policy");
  }
  return { model: body.model, messages, maxTokens, temperature, stops };
}

const STOP_REASON = {
  natural: "end_turn",
  stop: "stop_sequence",
  length: "max_tokens",
  filter: "refusal",
} as const;

/** Build the `message` object for a validated request. */
export function anthropicMessage(
  state: ServerState,
  req: MessagesRequest,
  batch: boolean,
  headers?: Record<string, string>,
) {
  const out = complete(
    {
      ctx: {
        api: "anthropic",
        model: req.model,
        messages: req.messages,
        seed: null,
        index: 0,
        temperature: req.temperature,
        maxTokens: req.maxTokens,
        batch,
        headers,
      },
      stops: req.stops,
      topLogprobs: 0,
      filterMarker: state.opts.contentFilterMarker,
    },
    state.opts.respond,
  );
  return {
    id: state.newId("msg_", 24),
    type: "message",
    role: "assistant",
    model: req.model,
    content: [{ type: "text", text: out.text }],
    stop_reason: STOP_REASON[out.finish],
    stop_sequence: out.stopSequence,
    usage: {
      input_tokens: promptTokenCount(req.messages),
      output_tokens: out.completionTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      service_tier: batch ? "batch" : "standard",
    },
  };
}
