// Shared types of the wire server: options, server state and the error/reply shapes
// that the per-API handlers produce.

import type { RespondHook } from "./text.ts";

/** Fault injection rates (each in [0, 1]) for the generation endpoints. */
export interface WireFaults {
  /** Share of requests answered 429 with `retry-after` and rate-limit headers. */
  rate429?: number;
  /** Share answered 500 (OpenAI server_error / Anthropic api_error). */
  rate500?: number;
  /** Share answered 529 overloaded_error (Anthropic) / 503 (OpenAI). */
  rate529?: number;
  /** Share whose socket is destroyed without any response. */
  rateDrop?: number;
  /**
   * Share answered 200 with the right content-type and a `content-length` that matches what is
   * sent, but whose JSON body is cut off part-way (a proxy or server that ended the body early).
   */
  rateTruncate?: number;
  /** Share delayed by `slowMs` before answering. */
  slowRate?: number;
  slowMs?: number;
  /** `retry-after` seconds sent with 429s (fractions allowed; the SDKs parse floats). */
  retryAfterS?: number;
  /** Seed of the fault PRNG (drawn once per generation request, in arrival order). */
  seed?: number;
}

/** "truncate": a 200 whose JSON body is cut off (see `rateTruncate`). */
export type FaultKind = "429" | "500" | "529" | "drop" | "truncate";

export interface WireServerOptions {
  /** Port to bind on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Key both APIs accept (Bearer for OpenAI, x-api-key for Anthropic). Default "sk-wire-test"; null accepts any. */
  apiKey?: string | null;
  /** When given, other models get 404 (model_not_found / not_found_error). Also listed by GET /v1/models. */
  models?: string[];
  /** A prompt containing this gets 400 content_filter; a scripted answer containing it is cut
   * with finish_reason "content_filter" / stop_reason "refusal". */
  contentFilterMarker?: string;
  /** Script answers; return undefined to fall back to the generated text. */
  respond?: RespondHook;
  /** Faults at start; change later with server.setFaults(). */
  faults?: WireFaults;
  /** Extra latency for every generation request, in ms (default 0). */
  latencyMs?: number;
  /** More than this many generation requests in flight at once get 429 (default unlimited). */
  concurrencyLimit?: number;
  /** GETs of a batch before it reports completed / ended (default 2; 1 = first poll). */
  batchPolls?: number;
  /** GETs a fine-tuning job (OpenAI or Together) spends "running" before it finishes (default 3). */
  finetunePolls?: number;
  /** A training file containing this is refused by "moderation" when its job is validated
   * (default "MODERATION-BLOCK"). */
  moderationMarker?: string;
  /** Fewest examples an OpenAI training file may have (default 10, as the real API). */
  finetuneMinExamples?: number;
  /** Seed for ids (default 0). */
  seed?: number;
  /**
   * The shape chat completions give their logprobs in, as an OpenAI-compatible server does
   * (default "openai"; see choiceLogprobs in openai-chat.ts for each).
   */
  logprobsFormat?: LogprobsFormat;
}

/** Servers whose logprob shapes the wire server speaks (docs/battery.md, judges and their logprobs). */
export type LogprobsFormat =
  | "openai"
  | "vllm"
  | "sglang"
  | "llamacpp"
  | "llamacpp-native"
  | "ollama"
  | "bpe-pieces"
  | "none";

/** An HTTP error response already in the right API's JSON shape. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`);
  }
}

export interface Reply {
  status: number;
  /** JSON-serialisable value, or raw bytes/text (then `contentType` says what). */
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  bytes: Buffer;
  createdAt: number;
}

/** How a fine-tuning job that would otherwise succeed fails instead (`failNextFinetunes`). */
export interface FinetuneFailure {
  message: string;
  code?: string;
}

export interface ServerState {
  opts: WireServerOptions & {
    apiKey: string | null;
    batchPolls: number;
    finetunePolls: number;
    moderationMarker: string;
    finetuneMinExamples: number;
  };
  baseUrl: string;
  files: Map<string, StoredFile>;
  /** Models made by fine-tuning jobs: chat completions accept them, GET /v1/models lists them. */
  fineTunedModels: Set<string>;
  /** Failures queued by `failNextFinetunes`, taken one per job created (either API). */
  finetuneFailures: FinetuneFailure[];
  /** Deterministic id: prefix + hex from (seed, counter). */
  newId(prefix: string, chars?: number): string;
  /** Current unix time in seconds. */
  now(): number;
}

export interface Incoming {
  method: string;
  /** Path without the query string. */
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body (undefined when the body is empty or not JSON). */
  json: unknown;
  /** Multipart fields, when the body is multipart/form-data. */
  form?: FormData;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
