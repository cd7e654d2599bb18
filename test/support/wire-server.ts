/**
 * Wire-faithful local test server for the OpenAI, Anthropic and Together AI HTTP APIs (tests only).
 *
 * A real node:http server on 127.0.0.1 that answers with the providers' own JSON
 * shapes, status codes, error envelopes and headers, so the official SDKs (and our
 * providers built on them) can be tested offline, including their error paths.
 *
 *   const server = await startWireServer({ models: ["gpt-4o-mini"], faults: { rate429: 0.2 } });
 *   const openai = new OpenAI({ apiKey: server.apiKey, baseURL: server.url + "/v1", maxRetries: 0 });
 *   const claude = new Anthropic({ apiKey: server.apiKey, baseURL: server.url, maxRetries: 0 });
 *   ...
 *   await server.close();
 *
 * Options (WireServerOptions): port (0), apiKey ("sk-wire-test"; null accepts any key), models
 *   (others get 404), contentFilterMarker, respond, faults, latencyMs, concurrencyLimit,
 *   batchPolls (2), finetunePolls (3), moderationMarker ("MODERATION-BLOCK"), finetuneMinExamples
 *   (10), seed (ids), logprobsFormat ("openai" | "vllm" | "sglang" | "llamacpp" | "llamacpp-native" |
 *   "ollama" | "bpe-pieces" | "none": the logprob shape of chat completions, see openai-chat.ts). Server: url, port, apiKey, stats, log, faults, setFaults, setRespond,
 *   queueFaults, dropBatchReplies, failNextFinetunes, dropFinetuneReplies, reset, close.
 *
 * Endpoints
 *   OpenAI    POST /v1/chat/completions            model, messages, n (1-128), seed, temperature (0-2),
 *                                                  top_p, max_tokens | max_completion_tokens, stop
 *                                                  (string | ≤4 strings), logprobs, top_logprobs (0-20)
 *             GET  /v1/models[/:id]
 *             POST /v1/files (multipart: file, purpose), GET /v1/files[?purpose=][/:id[/content]],
 *             DELETE /v1/files/:id   (shared with Together: see Files below)
 *             POST /v1/batches, GET /v1/batches[/:id], POST /v1/batches/:id/cancel
 *             POST /v1/fine_tuning/jobs, GET /v1/fine_tuning/jobs[?limit&after&metadata[k]=v],
 *             GET /v1/fine_tuning/jobs/:id, GET /v1/fine_tuning/jobs/:id/events[?limit&after],
 *             GET /v1/fine_tuning/jobs/:id/checkpoints[?limit&after], POST /v1/fine_tuning/jobs/:id/cancel
 *   Together  POST /v1/files/upload (multipart: file, file_name, purpose, file_type?)  (Bearer auth)
 *             GET /v1/files[/:id[/content]], DELETE /v1/files/:id (the shared routes above)
 *             POST /v1/fine-tunes, GET /v1/fine-tunes[/:id], GET /v1/fine-tunes/:id/events,
 *             GET /v1/fine-tunes/:id/checkpoints, POST /v1/fine-tunes/:id/cancel
 *             POST /v1/chat/completions (Together's is OpenAI-compatible: the route above)
 *   Anthropic POST /v1/messages                     needs x-api-key + anthropic-version; model, max_tokens
 *                                                  (required), messages (alternating, first user), system,
 *                                                  temperature (0-1), top_p, top_k, stop_sequences
 *             POST /v1/messages/batches, GET /v1/messages/batches[/:id[/results]],
 *             POST /v1/messages/batches/:id/cancel
 *             GET  /v1/models (when the request carries anthropic-version or x-api-key)
 *   Errors: OpenAI `{error:{message,type,param,code}}` (400 invalid_request_error, 401 invalid_api_key,
 *   404 model_not_found, 400 code content_filter, 429 rate_limit_exceeded, 500 server_error,
 *   503 overloaded); Anthropic `{type:"error", error:{type,message}, request_id}` (400
 *   invalid_request_error, 401 authentication_error, 404 not_found_error, 429 rate_limit_error,
 *   500 api_error, 529 overloaded_error); Together uses OpenAI's envelope (its ErrorData), 401
 *   code invalid_api_key. Every response has `x-request-id` (OpenAI, Together) or `request-id`
 *   (Anthropic); generation responses carry `x-ratelimit-*` / `anthropic-ratelimit-*`.
 *
 * Generated text
 *   Deterministic from (model, messages, seed, choice index); temperature 0 ignores the index;
 *   Anthropic has no seed and one choice, so identical requests get identical text. A token is
 *   a whitespace-separated word with its leading whitespace, so max_tokens cuts (finish_reason
 *   "length" / stop_reason "max_tokens"), stop sequences cut ("stop" / "stop_sequence"), logprobs
 *   are per word with descending top_logprobs (the chosen token first at temperature 0).
 *   `opts.respond(ctx)` scripts answers: return a string, `{text, logprobs?: [{token, logprob,
 *   top?}]}` (tokens must join to text), or undefined for the generated text. `ctx.messages` is
 *   the conversation flattened to `{role, content: string}`, Anthropic's system prompt first;
 *   `ctx.headers` the request's HTTP headers (lowercased names; none for batch lines).
 *   `server.setRespond()` swaps the hook at run time. Usage = rough word counts (prompt: words +
 *   3 per message). A prompt containing `contentFilterMarker` gets 400 (OpenAI code
 *   "content_filter"); a scripted answer containing it is cut there with finish_reason
 *   "content_filter" / stop_reason "refusal".
 *
 * Faults (generation endpoints only: chat completions, messages)
 *   `rate429` (with `retry-after: retryAfterS`), `rate500`, `rate529` (Anthropic 529 / OpenAI 503),
 *   `rateDrop` (socket destroyed, no response), `rateTruncate` (a 200 with content-type
 *   application/json and a matching content-length whose JSON body is cut off half-way: the
 *   first floor(length / 2) bytes of the real answer; a request that would not get a 200, e.g. a
 *   400 for a bad field, gets its answer whole and the fault is spent), `slowRate` + `slowMs`
 *   (delay), drawn from a PRNG seeded by `faults.seed`, one draw per request in arrival order.
 *   `server.setFaults()` changes them at run time, `server.queueFaults("429", "drop",
 *   "truncate", ...)` forces the next outcomes.
 *   `concurrencyLimit` answers 429 to requests beyond that many in flight; `latencyMs` delays
 *   every generation answer. Auth errors come before faults; faults before body validation.
 *   Batch lines never see injected faults.
 *
 * Batches
 *   Lists are newest first, as the real APIs'. `server.dropBatchReplies(k)`: the next k batch
 *   creations go through but their connection is destroyed before the reply.
 *   OpenAI: a batch is "validating" when created; each GET /v1/batches/:id is a poll: polls
 *   before `batchPolls` (default 2) say "in_progress", poll number `batchPolls` processes every
 *   line and says "completed" (or "failed" when the input file is malformed, with `errors`).
 *   2xx lines go to output_file_id, failed ones to error_file_id, as `{id, custom_id,
 *   response:{status_code, request_id, body}, error}`. Anthropic: "in_progress" until poll
 *   `batchPolls`, then "ended" with `results_url`; results lines are `{custom_id, result:
 *   {type:"succeeded", message} | {type:"errored", error} | {type:"canceled"}}`. Params are
 *   validated when processed (as the real API does), so bad params come back "errored".
 *
 * Files
 *   One store serves both APIs that use /v1/files: a file object always carries OpenAI's fields
 *   (id, object, bytes, created_at, expires_at, filename, purpose, status "processed",
 *   status_details) and Together's (Processed, FileType, LineCount), whichever API uploaded it, so
 *   either SDK parses any listing. OpenAI ids are `file-<22 hex>`, Together's `file-<uuid>`.
 *   Together checks a fine-tune JSONL file when it is uploaded (conversational {messages},
 *   instruction {prompt, completion} or general {text}, one format a file, no extra columns) and
 *   refuses a bad one with 400 `{error:{message, type:"invalid_request_error", param:"file",
 *   code:"invalid_file_format"}}`, the message naming the line (its SDK's `check_file` texts, e.g.
 *   "Error parsing json payload. Unexpected format on line 2."). Only the documented
 *   single-request upload is served; the current together-python SDK may instead upload through
 *   a signed-URL redirect, which this server does not implement.
 *
 * Fine-tuning (both APIs; every GET of a job is a poll, like batches; P = `finetunePolls`)
 *   OpenAI: created "validating_files" → poll 1 checks the files (chat format; at least
 *   `finetuneMinExamples` examples; a malformed line fails the job with error {code:
 *   "invalid_training_file", param: "training_file", message: "The job failed due to a file
 *   format error in the training file. Invalid file format. Line 3 is not valid JSON."}; a file
 *   containing `moderationMarker` fails it with OpenAI's moderation text, "...This training file
 *   was blocked because too many examples were flagged by our moderation API...") → "queued" →
 *   poll 2..P+1 "running" (the "auto" hyperparameters resolve to n_epochs 3, batch_size 1,
 *   learning_rate_multiplier 1.8; each running poll adds its share of the steps as "metrics"
 *   events and a checkpoint at every epoch end) → poll P+2 "succeeded" with fine_tuned_model
 *   `ft:<base>:wire-test:<suffix or empty>:<8 hex>`, trained_tokens, result_files (a
 *   step_metrics.csv). Events list newest first. The model (and each checkpoint's
 *   `...:ckpt-step-N`) is then accepted by chat completions and listed by GET /v1/models, and can
 *   itself be fine-tuned. Model must be one of the server's models (opts.models or the defaults)
 *   or an ft: model it made, else 400 code model_not_available; training_file must exist with
 *   purpose fine-tune, else 400 param training_file. Unknown job: 404.
 *   Together: created "pending" (model_output_name `wire-test/<base basename>[-<suffix>]-<8 hex>`
 *   from the start) → poll 1 "queued" (or "error" when the training file contains
 *   `moderationMarker`: a JOB_ERROR event says it was "rejected by our content moderation"; the
 *   exact text Together uses is not published, this one is ours) → poll 2..P+1 "running"
 *   (EPOCH_COMPLETE and CHECKPOINT_SAVE events; n_checkpoints counts the final one) → poll P+2
 *   "completed" (checkpoints "Final Merged" + "Final Adapter" for LoRA, "Final" for Full). The
 *   real job may also pass "compressing" / "uploading"; this one does not. Together jobs carry no
 *   error field: a failure is status "error" plus a JOB_ERROR event whose message is the error.
 *   Events list oldest first. cancel → "cancel_requested", "cancelled" on the next poll.
 *   from_checkpoint takes `<job id | output name>[:<step>]` of a completed job. The legacy flat
 *   `lora`, `lora_r`, ... fields are not in Together's current API reference and are ignored.
 *   `server.failNextFinetunes(k, {message, code?})`: the next k jobs created (either API) fail at
 *   the end of their running polls with that error. `server.dropFinetuneReplies(k, afterMs?)`:
 *   the next k job creations go through but get no reply (as dropBatchReplies).
 *
 * Counting
 *   `server.stats` = {requests, byStatus, byPath (route pattern over all methods, e.g.
 *   "/v1/batches/:id"; the log tells POST /v1/files from GET /v1/files), dropped,
 *   inFlight, maxInFlight (generation requests from arrival to the end of the answer; requests
 *   only overlap on the server when it is told to wait: latencyMs or slow faults)};
 *   `server.log` = one entry per finished request {api, method, path, route, model, body,
 *   outcome: "ok"|"429"|"500"|"overloaded"|"drop"|"error4xx"|"truncated", status (null for
 *   drops), at, ms, requestId}. `server.reset()` clears both and restarts the fault stream from its seed.
 *
 * Standalone: `npx tsx test/support/wire-server.ts --port 8787 [--rate429 0.2 --rate500 0.05
 *   --rate-drop 0.02 --rate-truncate 0.05 --slow-rate 0.1 --slow-ms 500 --retry-after-s 1
 *   --api-key K --models a,b --finetune-polls 3 --moderation-marker M --finetune-min-examples 10]`
 */

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { AnthropicBatches } from "./wire/anthropic-batches.ts";
import { anthropicError, anthropicMessage, parseMessagesRequest } from "./wire/anthropic-messages.ts";
import {
  type FaultKind,
  type FinetuneFailure,
  HttpError,
  type Incoming,
  isObject,
  type Reply,
  type ServerState,
  type WireFaults,
  type WireServerOptions,
} from "./wire/context.ts";
import { FaultInjector } from "./wire/faults.ts";
import { OpenAIBatches } from "./wire/openai-batches.ts";
import { chatCompletion, openaiError, parseChatRequest } from "./wire/openai-chat.ts";
import { OpenAIFineTuning } from "./wire/openai-finetune.ts";
import { hexOf } from "./wire/random.ts";
import { type RespondHook, ScriptError } from "./wire/text.ts";
import { TogetherFineTuning } from "./wire/together.ts";

export type { FaultKind, FinetuneFailure, WireFaults, WireServerOptions } from "./wire/context.ts";
export { OPENAI_ORG_SLUG } from "./wire/openai-finetune.ts";
export type {
  ChatTurn,
  RespondContext,
  RespondHook,
  ScriptedAnswer,
  TokenLogprob,
  TopToken,
} from "./wire/text.ts";
export { TOGETHER_ACCOUNT } from "./wire/together.ts";

/** "together": Together AI's own routes (/v1/files/upload, /v1/fine-tunes...); shared routes log "openai". */
export type WireApi = "openai" | "anthropic" | "together";
/** "truncated": a 200 whose body was cut off by the `truncate` fault (status 200). */
export type WireOutcome = "ok" | "429" | "500" | "overloaded" | "drop" | "error4xx" | "truncated";

export interface WireLogEntry {
  api: WireApi;
  method: string;
  path: string;
  /** Route pattern, e.g. "/v1/batches/:id" (the raw path for unknown routes). */
  route: string;
  model: string | null;
  /** Parsed JSON body; for uploads {purpose, filename, bytes}; null when empty or unparsable. */
  body: unknown;
  outcome: WireOutcome;
  /** HTTP status sent; null when the connection was dropped. */
  status: number | null;
  /** Arrival time (ms since epoch). */
  at: number;
  /** Time from arrival to the end of the response. */
  ms: number;
  requestId: string;
}

export interface WireStats {
  requests: number;
  byStatus: Record<number, number>;
  byPath: Record<string, number>;
  dropped: number;
  /** Generation requests being answered right now, and the most there ever were at once. */
  inFlight: number;
  maxInFlight: number;
}

export interface WireServer {
  /** e.g. http://127.0.0.1:PORT (no trailing slash, no /v1). */
  readonly url: string;
  readonly port: number;
  /** The key the server accepts ("*" when any key is accepted). */
  readonly apiKey: string;
  /** Live counters. */
  readonly stats: WireStats;
  /** Live request log, one entry per finished request. */
  readonly log: WireLogEntry[];
  readonly faults: Readonly<Required<WireFaults>>;
  setFaults(faults: WireFaults): void;
  /** Replace (or with undefined, remove) the scripted-answer hook. */
  setRespond(hook: RespondHook | undefined): void;
  /** Force the next generation requests' outcomes, in order, ahead of the random draws. */
  queueFaults(...kinds: FaultKind[]): void;
  /**
   * The next `count` batch creations (either API) are carried out — the batch exists and runs —
   * but the connection is destroyed without a reply, `afterMs` later: a reply lost, or a client
   * killed while waiting for it, after the provider accepted the batch.
   */
  dropBatchReplies(count: number, afterMs?: number): void;
  /**
   * The next `count` fine-tuning jobs created (either API) fail at the end of their running
   * polls with this error instead of succeeding: OpenAI status "failed" with
   * `error: {code: code ?? "server_error", message, param: null}`, Together status "error"
   * with a JOB_ERROR event carrying `message`.
   */
  failNextFinetunes(count: number, error: FinetuneFailure): void;
  /** Like dropBatchReplies, for fine-tuning job creations (POST /v1/fine_tuning/jobs, /v1/fine-tunes). */
  dropFinetuneReplies(count: number, afterMs?: number): void;
  reset(): void;
  close(): Promise<void>;
}

export const DEFAULT_API_KEY = "sk-wire-test";
const DEFAULT_MODELS = ["gpt-4o-mini", "gpt-4.1-nano", "claude-haiku-4-5", "claude-sonnet-4-5"];

interface Route {
  method: string;
  pattern: string;
  regex: RegExp;
  api: WireApi | "either";
  generation?: boolean;
  handle: (inc: Incoming) => Reply | Promise<Reply>;
}

function compile(pattern: string): RegExp {
  const body = pattern.replace(/:(\w+)/g, (_, name) => `(?<${name}>[^/]+)`);
  return new RegExp(`^${body}/?$`);
}

const sleep = (ms: number, timers: Set<NodeJS.Timeout>) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      timers.delete(t);
      resolve();
    }, ms);
    timers.add(t);
  });

function header(
  inc: { headers: Record<string, string | string[] | undefined> },
  name: string,
): string | undefined {
  const v = inc.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A request's headers for the respond hook: one string each (node lowercases the names). */
function flatHeaders(inc: {
  headers: Record<string, string | string[] | undefined>;
}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(inc.headers))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

function looksAnthropic(headers: Record<string, string | string[] | undefined>): boolean {
  return headers["anthropic-version"] !== undefined || headers["x-api-key"] !== undefined;
}

const PARSE_FAILED = Symbol("parse-failed");

export async function startWireServer(opts: WireServerOptions = {}): Promise<WireServer> {
  let counter = 0;
  const idSeed = opts.seed ?? 0;
  const state: ServerState = {
    opts: {
      ...opts,
      apiKey: opts.apiKey === undefined ? DEFAULT_API_KEY : opts.apiKey,
      batchPolls: opts.batchPolls ?? 2,
      finetunePolls: opts.finetunePolls ?? 3,
      moderationMarker: opts.moderationMarker ?? "MODERATION-BLOCK",
      finetuneMinExamples: opts.finetuneMinExamples ?? 10,
    },
    baseUrl: "",
    files: new Map(),
    fineTunedModels: new Set(),
    finetuneFailures: [],
    newId: (prefix, chars = 24) => prefix + hexOf(`id:${idSeed}:${counter++}`, chars),
    now: () => Math.floor(Date.now() / 1000),
  };
  if (!Number.isInteger(state.opts.batchPolls) || state.opts.batchPolls < 1) {
    throw new Error(`wire-server: batchPolls must be an integer >= 1, got ${opts.batchPolls}`);
  }
  if (!Number.isInteger(state.opts.finetunePolls) || state.opts.finetunePolls < 1) {
    throw new Error(`wire-server: finetunePolls must be an integer >= 1, got ${opts.finetunePolls}`);
  }
  if (state.opts.moderationMarker === "") throw new Error("wire-server: moderationMarker must not be empty");
  const injector = new FaultInjector(opts.faults);
  const openaiBatches = new OpenAIBatches(state);
  const anthropicBatches = new AnthropicBatches(state);
  const openaiFineTuning = new OpenAIFineTuning(state);
  const together = new TogetherFineTuning(state);
  const baseModels = () => opts.models ?? DEFAULT_MODELS;
  const stats: WireStats = { requests: 0, byStatus: {}, byPath: {}, dropped: 0, inFlight: 0, maxInFlight: 0 };
  const batchCreate = new Set(["/v1/batches", "/v1/messages/batches"]);
  const batchReplyDrops = { count: 0, afterMs: 0 };
  const finetuneCreate = new Set(["/v1/fine_tuning/jobs", "/v1/fine-tunes"]);
  const finetuneReplyDrops = { count: 0, afterMs: 0 };
  const log: WireLogEntry[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closing: Promise<void> | undefined;

  const listModels = (inc: Incoming): Reply => {
    const ids = [...baseModels(), ...state.fineTunedModels];
    if (looksAnthropic(inc.headers)) {
      const data = ids.map((id) => ({
        type: "model",
        id,
        display_name: id,
        created_at: "2025-01-01T00:00:00Z",
      }));
      return {
        status: 200,
        body: { data, has_more: false, first_id: ids[0] ?? null, last_id: ids.at(-1) ?? null },
      };
    }
    const data = ids.map((id) => ({ id, object: "model", created: 1_700_000_000, owned_by: "wire-server" }));
    return { status: 200, body: { object: "list", data } };
  };

  const routes: Route[] = (
    [
      {
        method: "POST",
        pattern: "/v1/chat/completions",
        api: "openai",
        generation: true,
        handle: (inc) => ({
          status: 200,
          body: chatCompletion(state, parseChatRequest(state, inc.json), false, flatHeaders(inc)),
        }),
      },
      {
        method: "POST",
        pattern: "/v1/messages",
        api: "anthropic",
        generation: true,
        handle: (inc) => ({
          status: 200,
          body: anthropicMessage(state, parseMessagesRequest(state, inc.json), false, flatHeaders(inc)),
        }),
      },
      { method: "GET", pattern: "/v1/models", api: "either", handle: listModels },
      {
        method: "GET",
        pattern: "/v1/models/:id",
        api: "either",
        handle: (inc) => {
          const id = inc.params.id;
          const anthropic = looksAnthropic(inc.headers);
          if (opts.models && !opts.models.includes(id) && !state.fineTunedModels.has(id)) {
            throw anthropic
              ? anthropicError(404, "not_found_error", `model: ${id}`)
              : openaiError(
                  404,
                  `The model '${id}' does not exist`,
                  "invalid_request_error",
                  "model",
                  "model_not_found",
                );
          }
          const body = anthropic
            ? { type: "model", id, display_name: id, created_at: "2025-01-01T00:00:00Z" }
            : { id, object: "model", created: 1_700_000_000, owned_by: "wire-server" };
          return { status: 200, body };
        },
      },
      { method: "POST", pattern: "/v1/files", api: "openai", handle: (inc) => openaiBatches.uploadFile(inc) },
      { method: "GET", pattern: "/v1/files", api: "openai", handle: (inc) => openaiBatches.listFiles(inc) },
      { method: "POST", pattern: "/v1/files/upload", api: "together", handle: (inc) => together.upload(inc) },
      { method: "GET", pattern: "/v1/files/:id", api: "openai", handle: (inc) => openaiBatches.getFile(inc) },
      {
        method: "DELETE",
        pattern: "/v1/files/:id",
        api: "openai",
        handle: (inc) => openaiBatches.deleteFile(inc),
      },
      {
        method: "GET",
        pattern: "/v1/files/:id/content",
        api: "openai",
        handle: (inc) => openaiBatches.fileContent(inc),
      },
      { method: "POST", pattern: "/v1/batches", api: "openai", handle: (inc) => openaiBatches.create(inc) },
      { method: "GET", pattern: "/v1/batches", api: "openai", handle: () => openaiBatches.list() },
      {
        method: "GET",
        pattern: "/v1/batches/:id",
        api: "openai",
        handle: (inc) => openaiBatches.retrieve(inc),
      },
      {
        method: "POST",
        pattern: "/v1/batches/:id/cancel",
        api: "openai",
        handle: (inc) => openaiBatches.cancel(inc),
      },
      {
        method: "POST",
        pattern: "/v1/fine_tuning/jobs",
        api: "openai",
        handle: (inc) => openaiFineTuning.create(inc, baseModels()),
      },
      {
        method: "GET",
        pattern: "/v1/fine_tuning/jobs",
        api: "openai",
        handle: (inc) => openaiFineTuning.list(inc),
      },
      {
        method: "GET",
        pattern: "/v1/fine_tuning/jobs/:id",
        api: "openai",
        handle: (inc) => openaiFineTuning.retrieve(inc),
      },
      {
        method: "GET",
        pattern: "/v1/fine_tuning/jobs/:id/events",
        api: "openai",
        handle: (inc) => openaiFineTuning.listEvents(inc),
      },
      {
        method: "GET",
        pattern: "/v1/fine_tuning/jobs/:id/checkpoints",
        api: "openai",
        handle: (inc) => openaiFineTuning.listCheckpoints(inc),
      },
      {
        method: "POST",
        pattern: "/v1/fine_tuning/jobs/:id/cancel",
        api: "openai",
        handle: (inc) => openaiFineTuning.cancel(inc),
      },
      {
        method: "POST",
        pattern: "/v1/fine-tunes",
        api: "together",
        handle: (inc) => together.create(inc, baseModels()),
      },
      { method: "GET", pattern: "/v1/fine-tunes", api: "together", handle: () => together.list() },
      {
        method: "GET",
        pattern: "/v1/fine-tunes/:id",
        api: "together",
        handle: (inc) => together.retrieve(inc),
      },
      {
        method: "GET",
        pattern: "/v1/fine-tunes/:id/events",
        api: "together",
        handle: (inc) => together.listEvents(inc),
      },
      {
        method: "GET",
        pattern: "/v1/fine-tunes/:id/checkpoints",
        api: "together",
        handle: (inc) => together.listCheckpoints(inc),
      },
      {
        method: "POST",
        pattern: "/v1/fine-tunes/:id/cancel",
        api: "together",
        handle: (inc) => together.cancel(inc),
      },
      {
        method: "POST",
        pattern: "/v1/messages/batches",
        api: "anthropic",
        handle: (inc) => anthropicBatches.create(inc),
      },
      {
        method: "GET",
        pattern: "/v1/messages/batches",
        api: "anthropic",
        handle: () => anthropicBatches.list(),
      },
      {
        method: "GET",
        pattern: "/v1/messages/batches/:id",
        api: "anthropic",
        handle: (inc) => anthropicBatches.retrieve(inc),
      },
      {
        method: "GET",
        pattern: "/v1/messages/batches/:id/results",
        api: "anthropic",
        handle: (inc) => anthropicBatches.results(inc),
      },
      {
        method: "POST",
        pattern: "/v1/messages/batches/:id/cancel",
        api: "anthropic",
        handle: (inc) => anthropicBatches.cancel(inc),
      },
    ] as Array<Omit<Route, "regex">>
  ).map((r) => ({ ...r, regex: compile(r.pattern) }));

  function rateLimitHeaders(api: WireApi, limited: boolean): Record<string, string> {
    const retryS = injector.current.retryAfterS;
    if (api !== "anthropic") {
      return {
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": limited ? "0" : "9999",
        "x-ratelimit-reset-requests": limited ? `${retryS}s` : "6ms",
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-tokens": limited ? "0" : "1999000",
        "x-ratelimit-reset-tokens": limited ? `${retryS}s` : "30ms",
      };
    }
    const reset = new Date(Date.now() + (limited ? retryS * 1000 : 1000))
      .toISOString()
      .replace(/\.\d+Z$/, "Z");
    const h: Record<string, string> = {};
    for (const [kind, limit] of [
      ["requests", 4000],
      ["tokens", 2_000_000],
      ["input-tokens", 1_600_000],
      ["output-tokens", 400_000],
    ] as const) {
      h[`anthropic-ratelimit-${kind}-limit`] = String(limit);
      h[`anthropic-ratelimit-${kind}-remaining`] = limited ? "0" : String(limit - 1);
      h[`anthropic-ratelimit-${kind}-reset`] = reset;
    }
    return h;
  }

  function faultError(
    api: WireApi,
    fault: Exclude<FaultKind, "drop" | "truncate">,
    model: string | null,
  ): HttpError {
    const retryS = injector.current.retryAfterS;
    if (fault === "429") {
      const headers = { "retry-after": String(retryS), ...rateLimitHeaders(api, true) };
      return api !== "anthropic"
        ? openaiError(
            429,
            `Rate limit reached for ${model ?? "this model"} on requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again in ${retryS}s.`,
            "requests",
            null,
            "rate_limit_exceeded",
            headers,
          )
        : anthropicError(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 4,000 requests per minute.",
            headers,
          );
    }
    if (fault === "500") {
      return api !== "anthropic"
        ? openaiError(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
          )
        : anthropicError(500, "api_error", "Internal server error");
    }
    return api !== "anthropic"
      ? openaiError(503, "The engine is currently overloaded, please try again later.", "server_error")
      : anthropicError(529, "overloaded_error", "Overloaded");
  }

  function authenticate(api: WireApi, inc: Incoming): void {
    const expected = state.opts.apiKey;
    if (api === "together") {
      // Together: Bearer auth, its own 401 texts, in the shared {error:{...}} envelope.
      const key = header(inc, "authorization")?.match(/^Bearer\s+(.+)$/i)?.[1];
      if (!key || (expected !== null && key !== expected)) {
        throw openaiError(
          401,
          key
            ? "Invalid API key provided. You can find your API key at https://api.together.xyz/settings/api-keys."
            : "Unauthorized: no API key provided. Pass it as 'Authorization: Bearer <key>'.",
          "invalid_request_error",
          null,
          "invalid_api_key",
        );
      }
      return;
    }
    if (api === "openai") {
      const auth = header(inc, "authorization");
      const key = auth?.match(/^Bearer\s+(.+)$/i)?.[1];
      if (!key) {
        throw openaiError(
          401,
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
          "invalid_request_error",
        );
      }
      if (expected !== null && key !== expected) {
        const shown = key.length > 8 ? `${key.slice(0, 3)}*****${key.slice(-4)}` : key;
        throw openaiError(
          401,
          `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          "invalid_request_error",
          null,
          "invalid_api_key",
        );
      }
      return;
    }
    const key = header(inc, "x-api-key") ?? header(inc, "authorization")?.match(/^Bearer\s+(.+)$/i)?.[1];
    if (!key) throw anthropicError(401, "authentication_error", "x-api-key header is required");
    if (expected !== null && key !== expected)
      throw anthropicError(401, "authentication_error", "invalid x-api-key");
    if (!header(inc, "anthropic-version")) {
      throw anthropicError(400, "invalid_request_error", "anthropic-version: header is required");
    }
  }

  /** Send the reply; `truncate` cuts the serialised body to its first half (headers say so). */
  function send(res: ServerResponse, api: WireApi, requestId: string, reply: Reply, truncate = false): void {
    if (res.destroyed || res.writableEnded) return;
    const headers: Record<string, string> = { ...(reply.headers ?? {}) };
    headers[api === "anthropic" ? "request-id" : "x-request-id"] = requestId;
    let payload: Buffer;
    if (Buffer.isBuffer(reply.body) || typeof reply.body === "string") {
      payload = Buffer.isBuffer(reply.body) ? reply.body : Buffer.from(reply.body);
      headers["content-type"] = reply.contentType ?? "application/octet-stream";
    } else {
      let body = reply.body;
      if (api === "anthropic" && reply.status >= 400 && isObject(body) && body.type === "error") {
        body = { ...body, request_id: requestId };
      }
      payload = Buffer.from(JSON.stringify(body));
      headers["content-type"] = "application/json";
    }
    if (truncate) payload = payload.subarray(0, Math.max(1, Math.floor(payload.length / 2)));
    headers["content-length"] = String(payload.length);
    res.writeHead(reply.status, headers);
    res.end(payload);
  }

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const method = req.method ?? "GET";
    let match: { route: Route; params: Record<string, string> } | null = null;
    for (const route of routes) {
      if (route.method !== method) continue;
      const m = route.regex.exec(url.pathname);
      if (m) {
        match = { route, params: { ...(m.groups ?? {}) } };
        break;
      }
    }
    // In flight from arrival (before the body is read) to the end of the response.
    const generation = match?.route.generation === true;
    if (generation) {
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    }
    const raw = await readBody(req);
    const apiOf = match?.route.api ?? "either";
    const api: WireApi = apiOf === "either" ? (looksAnthropic(req.headers) ? "anthropic" : "openai") : apiOf;
    const contentType = req.headers["content-type"] ?? "";
    let json: unknown;
    let form: FormData | undefined;
    let logBody: unknown = null;
    if (contentType.startsWith("multipart/form-data")) {
      try {
        form = await new Request("http://127.0.0.1/", {
          method: "POST",
          headers: { "content-type": contentType },
          body: raw,
        }).formData();
        const file = form.get("file");
        logBody = {
          purpose: form.get("purpose"),
          filename: file instanceof Blob ? (file as File).name : null,
          bytes: file instanceof Blob ? file.size : null,
        };
      } catch {
        json = PARSE_FAILED;
      }
    } else if (raw.length > 0) {
      try {
        json = JSON.parse(raw.toString("utf8"));
        logBody = json;
      } catch {
        json = PARSE_FAILED;
      }
    }
    const requestId = `req_${hexOf(`req:${idSeed}:${counter++}`, api === "anthropic" ? 24 : 32)}`;
    const routeName = match?.route.pattern ?? url.pathname;
    const model = isObject(json) && typeof json.model === "string" ? json.model : null;
    stats.requests++;
    stats.byPath[routeName] = (stats.byPath[routeName] ?? 0) + 1;
    const finish = (status: number | null, outcome: WireOutcome) => {
      if (generation) stats.inFlight--;
      if (status === null) stats.dropped++;
      else stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
      log.push({
        api,
        method,
        path: url.pathname,
        route: routeName,
        model,
        body: logBody,
        outcome,
        status,
        at,
        ms: Date.now() - at,
        requestId,
      });
    };
    const outcomeOf = (status: number): WireOutcome =>
      status < 400
        ? "ok"
        : status === 429
          ? "429"
          : status === 500
            ? "500"
            : status >= 500
              ? "overloaded"
              : "error4xx";

    let reply: Reply;
    let truncate = false;
    try {
      if (!match) {
        throw api !== "anthropic"
          ? openaiError(404, `Invalid URL (${method} ${url.pathname})`, "invalid_request_error")
          : anthropicError(404, "not_found_error", "Not Found");
      }
      const inc: Incoming = {
        method,
        path: url.pathname,
        params: match.params,
        query: url.searchParams,
        headers: req.headers,
        json,
        form,
      };
      authenticate(api, inc);
      if (generation) {
        const limit = opts.concurrencyLimit;
        const decision = injector.decide();
        let fault = decision.fault;
        if (fault === null && limit !== undefined && stats.inFlight > limit) fault = "429";
        if (fault === "drop") {
          req.socket.destroy();
          finish(null, "drop");
          return;
        }
        if (fault === "truncate") truncate = true;
        else if (fault !== null) throw faultError(api, fault, model);
        const delay = decision.delayMs + (opts.latencyMs ?? 0);
        if (delay > 0) await sleep(delay, timers);
      }
      if (json === PARSE_FAILED) {
        throw api !== "anthropic"
          ? openaiError(
              400,
              "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
              "invalid_request_error",
            )
          : anthropicError(400, "invalid_request_error", "There was an error parsing the body: invalid JSON");
      }
      reply = await match.route.handle(inc);
      // A creation the provider accepted whose reply never arrives (batch or fine-tuning job).
      const drops = batchCreate.has(routeName)
        ? batchReplyDrops
        : finetuneCreate.has(routeName)
          ? finetuneReplyDrops
          : null;
      if (drops && method === "POST" && reply.status < 400 && drops.count > 0) {
        drops.count--;
        if (drops.afterMs > 0) await sleep(drops.afterMs, timers);
        req.socket.destroy();
        finish(null, "drop");
        return;
      }
      if (generation) reply.headers = { ...rateLimitHeaders(api, false), ...(reply.headers ?? {}) };
    } catch (err) {
      if (err instanceof HttpError) reply = { status: err.status, body: err.body, headers: err.headers };
      else {
        const message =
          err instanceof ScriptError ? err.message : `wire-server internal error: ${String(err)}`;
        reply =
          api !== "anthropic"
            ? { status: 500, body: { error: { message, type: "server_error", param: null, code: null } } }
            : { status: 500, body: { type: "error", error: { type: "api_error", message } } };
      }
    }
    truncate &&= reply.status === 200;
    send(res, api, requestId, reply, truncate);
    finish(reply.status, truncate ? "truncated" : outcomeOf(reply.status));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ error: { message: String(err), type: "server_error", param: null, code: null } }),
        );
      }
    });
  });
  // Keep-alive sockets are fine for the SDKs; close() destroys them explicitly.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  state.baseUrl = `http://127.0.0.1:${port}`;

  return {
    url: state.baseUrl,
    port,
    apiKey: state.opts.apiKey ?? "*",
    stats,
    log,
    get faults() {
      return injector.current;
    },
    setFaults: (f) => injector.set(f),
    setRespond(hook) {
      state.opts.respond = hook;
    },
    queueFaults: (...kinds) => injector.queue(kinds),
    dropBatchReplies(count, afterMs = 0) {
      batchReplyDrops.count = count;
      batchReplyDrops.afterMs = afterMs;
    },
    failNextFinetunes(count, error) {
      if (!Number.isInteger(count) || count < 0) {
        throw new Error(`wire-server failNextFinetunes: count must be an integer >= 0, got ${count}`);
      }
      state.finetuneFailures = Array.from({ length: count }, () => ({ ...error }));
    },
    dropFinetuneReplies(count, afterMs = 0) {
      finetuneReplyDrops.count = count;
      finetuneReplyDrops.afterMs = afterMs;
    },
    reset() {
      stats.requests = 0;
      stats.byStatus = {};
      stats.byPath = {};
      stats.dropped = 0;
      stats.maxInFlight = stats.inFlight;
      log.length = 0;
      injector.restart();
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function parseCli(argv: string[]): WireServerOptions {
  const opts: WireServerOptions = {};
  const faults: WireFaults = {};
  const faultFlags: Record<string, keyof WireFaults> = {
    rate429: "rate429",
    rate500: "rate500",
    rate529: "rate529",
    rateDrop: "rateDrop",
    rateTruncate: "rateTruncate",
    slowRate: "slowRate",
    slowMs: "slowMs",
    retryAfterS: "retryAfterS",
    faultSeed: "seed",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (!flag.startsWith("--")) throw new Error(`wire-server: unexpected argument '${flag}'`);
    const name = flag.slice(2).replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    const value = argv[++i];
    if (value === undefined) throw new Error(`wire-server: ${flag} needs a value`);
    const num = Number(value);
    if (name in faultFlags) {
      if (!Number.isFinite(num)) throw new Error(`wire-server: ${flag} must be a number, got '${value}'`);
      faults[faultFlags[name]] = num;
    } else if (
      name === "port" ||
      name === "latencyMs" ||
      name === "batchPolls" ||
      name === "finetunePolls" ||
      name === "finetuneMinExamples" ||
      name === "concurrencyLimit"
    ) {
      if (!Number.isInteger(num)) throw new Error(`wire-server: ${flag} must be an integer, got '${value}'`);
      opts[name] = num;
    } else if (name === "apiKey") opts.apiKey = value === "*" ? null : value;
    else if (name === "models") opts.models = value.split(",").filter(Boolean);
    else if (name === "contentFilterMarker") opts.contentFilterMarker = value;
    else if (name === "moderationMarker") opts.moderationMarker = value;
    else throw new Error(`wire-server: unknown flag ${flag}`);
  }
  return { ...opts, faults };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const server = await startWireServer(parseCli(process.argv.slice(2)));
    console.log(`wire-server listening on ${server.url}`);
    console.log(`  OpenAI:    baseURL ${server.url}/v1   Anthropic: baseURL ${server.url}`);
    console.log(`  API key:   ${server.apiKey}`);
    console.log(`  faults:    ${JSON.stringify(server.faults)}`);
    const stop = () => {
      console.log(`\n${JSON.stringify(server.stats)}`);
      server.close().then(() => process.exit(0));
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  }
}
