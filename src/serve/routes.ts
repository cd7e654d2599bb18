/**
 * The endpoints: GET /v1/models (and /v1/models/{id}), POST /v1/chat/completions,
 * POST /v1/completions. Each parses its body with the request schemas, runs the engine
 * through the queue and returns what the server writes (JSON or SSE chunks) plus what the
 * request log records.
 */
import { randomBytes } from "node:crypto";
import { ModelApiError } from "../models/types.ts";
import { deriveSeed } from "../runs/canonical.ts";
import type { ChatBatcher } from "./chat-batcher.ts";
import type { EngineQueue } from "./engine-queue.ts";
import { ApiError, unknownModel } from "./errors.ts";
import {
  ChatBodySchema,
  CompletionBodySchema,
  chatMessages,
  chatParams,
  parseBody,
  samplingParams,
} from "./requests.ts";
import type { ServedModel } from "./served-model.ts";
import { completeText } from "./text-completion.ts";
import { chatChunks, chatCompletion, sumUsage, textChunks, textCompletion } from "./wire-format.ts";

export interface RouteContext {
  models: ReadonlyMap<string, ServedModel>;
  queue: EngineQueue;
  batcher: ChatBatcher;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export interface RouteResult {
  status: number;
  /** A JSON body, or the chunks of an event stream. */
  body?: unknown;
  chunks?: object[];
  /** For the request log. */
  model?: string;
  promptTokens?: number;
  completionTokens?: number;
}

/**
 * Sample i's seed: sample 0 draws from `seed` itself (so n = 1 is what the local provider does
 * with the seed an emlab study sends), later samples from seeds derived from it.
 */
export function sampleSeeds(seed: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? seed : deriveSeed(seed, i)));
}

const newId = (prefix: string) => `${prefix}-${randomBytes(12).toString("hex")}`;

function pickModel(ctx: RouteContext, name: string): ServedModel {
  const m = ctx.models.get(name);
  if (!m) throw unknownModel(name, [...ctx.models.keys()]);
  return m;
}

/** The engine's refusals (a prompt past the context) are the client's; anything else is ours. */
function engineError(e: unknown): unknown {
  if (e instanceof ApiError) return e;
  if (e instanceof ModelApiError && e.kind === "bad_request") return new ApiError(400, e.message);
  if (e instanceof ModelApiError && e.kind === "aborted") return new ApiError(499, e.message);
  return new ApiError(500, `the engine failed: ${(e as Error).message}`);
}

export function modelEntry(m: ServedModel) {
  return {
    id: m.name,
    object: "model",
    created: m.created,
    owned_by: "emlab",
    emlab: {
      directory: m.dir,
      adapter: m.adapter,
      chat_template: m.engine.templateSource?.file ?? null,
      edits: m.edits,
    },
  };
}

export function listModels(ctx: RouteContext): RouteResult {
  return { status: 200, body: { object: "list", data: [...ctx.models.values()].map(modelEntry) } };
}

export function getModel(ctx: RouteContext, id: string): RouteResult {
  const m = ctx.models.get(id);
  if (!m)
    throw new ApiError(404, `The model '${id}' does not exist`, { param: "model", code: "model_not_found" });
  return { status: 200, body: modelEntry(m), model: id };
}

export async function chatCompletions(ctx: RouteContext, raw: unknown): Promise<RouteResult> {
  const body = parseBody(ChatBodySchema, raw);
  const served = pickModel(ctx, body.model);
  const params = chatParams(body);
  const n = body.n ?? 1;
  const seed = body.seed ?? 0;
  const r = await ctx.batcher
    .chat({
      served,
      messages: chatMessages(body),
      params,
      sampleSeeds: sampleSeeds(seed, n),
      signal: ctx.signal,
    })
    .catch((e) => {
      throw engineError(e);
    });
  const meta = { id: newId("chatcmpl"), created: Math.floor(Date.now() / 1000), model: served.name };
  const log = {
    model: served.name,
    promptTokens: r.usage.promptTokens,
    completionTokens: r.usage.completionTokens,
  };
  if (body.stream)
    return { status: 200, chunks: chatChunks(meta, r, body.stream_options?.include_usage === true), ...log };
  if (body.stream_options)
    throw new ApiError(400, "stream_options needs stream: true", { param: "stream_options" });
  return { status: 200, body: chatCompletion(meta, r), ...log };
}

export async function completions(ctx: RouteContext, raw: unknown): Promise<RouteResult> {
  const body = parseBody(CompletionBodySchema, raw);
  const served = pickModel(ctx, body.model);
  const params = samplingParams(body, body.max_tokens);
  if (body.logprobs != null) params.top_logprobs = body.logprobs;
  const n = body.n ?? 1;
  const seed = body.seed ?? 0;
  const prompts = typeof body.prompt === "string" ? [body.prompt] : body.prompt;
  const seeds = sampleSeeds(seed, n);
  const responses = await ctx.queue
    .run(async () => prompts.map((p) => completeText(served, p, params, n, seeds)), ctx.signal)
    .catch((e) => {
      throw engineError(e);
    });
  const meta = { id: newId("cmpl"), created: Math.floor(Date.now() / 1000), model: served.name };
  const total = sumUsage(responses).usage;
  const log = {
    model: served.name,
    promptTokens: total.promptTokens,
    completionTokens: total.completionTokens,
  };
  if (body.stream)
    return {
      status: 200,
      chunks: textChunks(meta, responses, body.stream_options?.include_usage === true),
      ...log,
    };
  return { status: 200, body: textCompletion(meta, responses), ...log };
}
