/**
 * The `anthropic` provider: the Messages API through @anthropic-ai/sdk, and Message Batches.
 *
 * Mapping from the ModelApi seam:
 *  - system messages → the top-level `system` string (joined by blank lines);
 *  - n > 1 → n independent calls (the API has no n), at most `options.nConcurrency` at once;
 *  - max_tokens is required by the API: `options.defaultMaxTokens` (1024) when not given;
 *  - stop → stop_sequences; top_k passes through; seed is ignored (no such parameter;
 *    the "seed" capability is absent); logprobs are refused (capability absent);
 *  - stop_reason is normalised to OpenAI-style finish reasons (end_turn/stop_sequence →
 *    "stop", max_tokens → "length", refusal → "content_filter") so judges see one vocabulary.
 *
 * Key from `apiKeyEnv` (default ANTHROPIC_API_KEY). The SDK's retries are off: the
 * scheduler owns retries.
 */
import { Anthropic } from "@anthropic-ai/sdk";
import { z } from "zod";
import {
  callMapped,
  type ErrorContext,
  kindForAnthropicType,
  modelError,
  nonJsonBodyError,
  redactSecrets,
} from "./errors.ts";
import {
  checkBaseUrl,
  ProviderSettingsError,
  parseProviderOptions,
  readApiKey,
  resolveHeaders,
} from "./provider-settings.ts";
import {
  type BatchApi,
  type BatchItem,
  type BatchStatus,
  type BatchSubmission,
  type Capability,
  type ChatRequest,
  type ChatResponse,
  type Completion,
  type ModelApi,
  ModelApiError,
  type ProviderSettings,
} from "./types.ts";

// SDK v1 dropped temperature/top_p/top_k from its types (deprecated for the newest models);
// the API still takes them for models that support them, and the SDK sends the body as given.
type MessageBody = Anthropic.Messages.MessageCreateParamsNonStreaming & {
  temperature?: number;
  top_p?: number;
  top_k?: number;
};
type Message = Anthropic.Messages.Message;

export const AnthropicOptionsSchema = z
  .object({
    defaultMaxTokens: z.number().int().positive().optional(),
    nConcurrency: z.number().int().positive().max(64).optional(),
    timeoutMs: z.number().int().positive().optional(),
  })
  .strict();
export type AnthropicOptions = z.infer<typeof AnthropicOptionsSchema>;

const DEFAULT_MAX_TOKENS = 1024;
const DEFAULT_N_CONCURRENCY = 4;
const DEFAULT_TIMEOUT_MS = 600_000;

const FINISH_REASON: Record<string, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  refusal: "content_filter",
  tool_use: "tool_calls",
};

/** Build the Messages API body for one sample of a request. */
export function buildAnthropicBody(
  model: string,
  req: ChatRequest,
  opts: { defaultMaxTokens: number; ctx: ErrorContext },
): MessageBody {
  const p = req.params;
  if (p.logprobs || p.top_logprobs !== undefined) {
    throw modelError("bad_request", opts.ctx, "logprobs are not available from the Anthropic API");
  }
  const system = req.messages.filter((m) => m.role === "system").map((m) => m.content);
  const turns = req.messages.filter((m) => m.role !== "system");
  if (turns.length === 0)
    throw modelError("bad_request", opts.ctx, "no user/assistant messages (only system)");
  const body: MessageBody = {
    model,
    max_tokens: p.max_tokens ?? opts.defaultMaxTokens,
    messages: turns.map((m) => ({ role: m.role as "user" | "assistant", content: m.content })),
  };
  if (system.length > 0) body.system = system.join("\n\n");
  if (p.temperature !== undefined) body.temperature = p.temperature;
  if (p.top_p !== undefined) body.top_p = p.top_p;
  if (p.top_k !== undefined) body.top_k = p.top_k;
  if (p.stop !== undefined && p.stop.length > 0) body.stop_sequences = p.stop;
  return body;
}

/** One Message → one Completion (text blocks concatenated). */
export function anthropicCompletion(msg: Message): Completion {
  const text = (msg.content ?? []).map((b) => (b.type === "text" ? b.text : "")).join("");
  const reason = msg.stop_reason ?? "unknown";
  return { text, finishReason: FINISH_REASON[reason] ?? reason };
}

function promptTokens(msg: Message): number {
  const u = msg.usage;
  if (!u) return 0;
  // input_tokens excludes cache reads/writes; the prompt really processed is their sum.
  return (u.input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0);
}

/**
 * Check a Messages API answer before it is read: a body that is not JSON (the SDK's raw text,
 * or undefined when empty) is a transport fault ("network"); JSON without a content array is
 * the server's ("server"). Without this an HTML page on a 200 would read as an empty completion.
 */
export function checkAnthropicMessage(msg: unknown, ctx: ErrorContext): Message {
  const notJson = nonJsonBodyError(ctx, msg);
  if (notJson) throw notJson;
  if (typeof msg !== "object" || !Array.isArray((msg as { content?: unknown }).content)) {
    throw modelError("server", ctx, "malformed response: no content array");
  }
  return msg as Message;
}

/** Several Messages (the n samples of one request) → one ChatResponse. */
export function anthropicChatResponse(messages: Message[]): ChatResponse {
  return {
    completions: messages.map(anthropicCompletion),
    usage: {
      promptTokens: messages.reduce((s, m) => s + promptTokens(m), 0),
      completionTokens: messages.reduce((s, m) => s + (m.usage?.output_tokens ?? 0), 0),
    },
    responseId: messages.map((m) => m.id).join(","),
  };
}

// Message Batches custom_id: ^[a-zA-Z0-9_-]{1,64}$. A request with n > 1 becomes n batch
// requests "<customId>-n<k>"; ids ending in -n<digits> are refused so results regroup unambiguously.
/** Clock skew allowed between this machine and the provider when looking for a batch. */
const FIND_BATCH_SLACK_MS = 120_000;
const FIND_BATCH_MAX_SCAN = 2000;
const CUSTOM_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const SAMPLE_SUFFIX_RE = /^(.*)-n(\d+)$/;

export class AnthropicModelApi implements ModelApi, BatchApi {
  readonly provider: string;
  readonly model: string;
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(["batch"]);
  // Private fields: util.inspect / JSON.stringify of this object never shows the client (or its key).
  readonly #client: Anthropic;
  readonly #ctx: ErrorContext;
  readonly #opts: Required<AnthropicOptions>;

  constructor(settings: ProviderSettings, env: NodeJS.ProcessEnv = process.env) {
    const opts = parseProviderOptions(settings, AnthropicOptionsSchema);
    if (!settings.model)
      throw new ProviderSettingsError(`provider "${settings.provider}": model is empty`, ["model"]);
    this.provider = settings.provider;
    this.model = settings.model;
    const apiKey = readApiKey(settings, env, "ANTHROPIC_API_KEY");
    if (apiKey === undefined) {
      throw new ProviderSettingsError(
        `provider "${settings.provider}": the Anthropic API needs a key (options.noAuth is not supported)`,
        ["options", "noAuth"],
      );
    }
    // `${env:NAME}` references in headers are read here; only the provider holds their values.
    const extra = resolveHeaders(settings, env);
    this.#ctx = { provider: settings.provider, model: settings.model, secrets: [apiKey, ...extra.secrets] };
    this.#opts = {
      defaultMaxTokens: opts.defaultMaxTokens ?? DEFAULT_MAX_TOKENS,
      nConcurrency: opts.nConcurrency ?? DEFAULT_N_CONCURRENCY,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    };
    this.#client = new Anthropic({
      apiKey,
      // Explicit, so ANTHROPIC_BASE_URL in the environment cannot redirect a study silently.
      baseURL: checkBaseUrl(settings) ?? "https://api.anthropic.com",
      maxRetries: 0,
      timeout: this.#opts.timeoutMs,
      defaultHeaders: extra.headers,
    });
  }

  #body(req: ChatRequest): MessageBody {
    if (!Number.isInteger(req.n) || req.n < 1) {
      throw modelError("bad_request", this.#ctx, `n must be a positive integer, got ${req.n}`);
    }
    return buildAnthropicBody(this.model, req, {
      defaultMaxTokens: this.#opts.defaultMaxTokens,
      ctx: this.#ctx,
    });
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    const body = this.#body(req);
    const timeoutMs = req.timeoutMs ?? this.#opts.timeoutMs;
    // One controller for the n samples: the first failure cancels the rest (the request fails as a whole).
    const group = new AbortController();
    const onAbort = () => group.abort(req.signal?.reason);
    req.signal?.addEventListener("abort", onAbort, { once: true });
    if (req.signal?.aborted) group.abort(req.signal.reason);
    const messages: Message[] = new Array(req.n);
    let next = 0;
    let firstError: unknown;
    const worker = async () => {
      while (next < req.n && firstError === undefined) {
        const k = next++;
        try {
          const msg = await callMapped(this.#ctx, { signal: group.signal, timeoutMs }, (signal) =>
            this.#client.messages.create(body, { signal, timeout: timeoutMs, maxRetries: 0 }),
          );
          messages[k] = checkAnthropicMessage(msg, this.#ctx);
        } catch (err) {
          if (firstError === undefined) firstError = err;
          group.abort();
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(req.n, this.#opts.nConcurrency) }, worker));
    } finally {
      req.signal?.removeEventListener("abort", onAbort);
    }
    if (firstError !== undefined) throw firstError;
    return anthropicChatResponse(messages);
  }

  async submitBatch(items: BatchItem[]): Promise<string> {
    if (items.length === 0) throw modelError("bad_request", this.#ctx, "submitBatch: no items");
    const requests: Anthropic.Messages.BatchCreateParams.Request[] = [];
    const seen = new Set<string>();
    for (const item of items) {
      const id = item.customId;
      const longest = `${id}-n${item.request.n - 1}`;
      if (!CUSTOM_ID_RE.test(longest) || SAMPLE_SUFFIX_RE.test(id)) {
        throw modelError(
          "bad_request",
          this.#ctx,
          `submitBatch: customId "${id}" must use only letters, digits, '_' and '-', not end in -n<digits>, ` +
            `and fit 64 characters with its sample suffix ("${longest}")`,
        );
      }
      if (seen.has(id)) throw modelError("bad_request", this.#ctx, `submitBatch: duplicate customId "${id}"`);
      seen.add(id);
      const params = this.#body(item.request);
      for (let k = 0; k < item.request.n; k++) requests.push({ custom_id: `${id}-n${k}`, params });
    }
    const batch = await callMapped(this.#ctx, { timeoutMs: this.#opts.timeoutMs }, (signal) =>
      this.#client.messages.batches.create({ requests }, { signal }),
    );
    return batch.id;
  }

  /**
   * Message batches carry no metadata, so an interrupted submit is recognised by time and size:
   * the one batch created since the submit started (less clock slack) with exactly as many
   * requests, not claimed by another job. Two candidates are ambiguous: undefined. Results of a
   * wrongly adopted batch would not carry the submission's custom ids, so nothing of it is stored.
   */
  async findBatch(submission: BatchSubmission): Promise<string | undefined> {
    const oldest = submission.since.getTime() - FIND_BATCH_SLACK_MS;
    return callMapped(this.#ctx, { timeoutMs: this.#opts.timeoutMs }, async (signal) => {
      const found: string[] = [];
      let seen = 0;
      for await (const b of this.#client.messages.batches.list({ limit: 100 }, { signal })) {
        if (Date.parse(b.created_at) < oldest || ++seen > FIND_BATCH_MAX_SCAN) break;
        const c = b.request_counts;
        const total = c.processing + c.succeeded + c.errored + c.canceled + c.expired;
        // One request per sample: the batch API has no n.
        if (total === submission.samples && !submission.exclude.has(b.id)) found.push(b.id);
      }
      return found.length === 1 ? found[0] : undefined;
    });
  }

  async batchStatus(batchId: string): Promise<BatchStatus> {
    const batch = await callMapped(this.#ctx, { timeoutMs: this.#opts.timeoutMs }, (signal) =>
      this.#client.messages.batches.retrieve(batchId, {}, { signal }),
    );
    // Anthropic only says in_progress / canceling / ended; "ended" is split by how it ended.
    if (batch.processing_status !== "ended") return "in_progress";
    if (batch.cancel_initiated_at) return "cancelled";
    const c = batch.request_counts;
    if (c && c.expired > 0 && c.succeeded + c.errored === 0) return "expired";
    return "completed";
  }

  async batchResults(batchId: string): Promise<Map<string, ChatResponse | ModelApiError>> {
    const t = { timeoutMs: this.#opts.timeoutMs };
    const batch = await callMapped(this.#ctx, t, (signal) =>
      this.#client.messages.batches.retrieve(batchId, {}, { signal }),
    );
    if (batch.processing_status !== "ended") {
      throw modelError(
        "other",
        this.#ctx,
        `batch ${batchId} is ${batch.processing_status}: results are not ready yet`,
      );
    }
    // Collect every sample line, then regroup the n samples of each item in k order.
    const samples = new Map<string, Map<number, Message | ModelApiError>>();
    await callMapped(this.#ctx, t, async (signal) => {
      const decoder = await this.#client.messages.batches.results(batchId, {}, { signal });
      for await (const line of decoder) {
        const m = SAMPLE_SUFFIX_RE.exec(line.custom_id);
        const base = m ? m[1] : line.custom_id;
        const k = m ? Number(m[2]) : 0;
        const perItem = samples.get(base) ?? new Map<number, Message | ModelApiError>();
        samples.set(base, perItem);
        perItem.set(k, this.#lineResult(line));
      }
    });
    const results = new Map<string, ChatResponse | ModelApiError>();
    for (const [id, perItem] of samples) {
      const ordered = [...perItem.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
      const failed = ordered.find((r): r is ModelApiError => r instanceof ModelApiError);
      results.set(id, failed ?? anthropicChatResponse(ordered as Message[]));
    }
    return results;
  }

  #lineResult(line: Anthropic.Messages.MessageBatchIndividualResponse): Message | ModelApiError {
    const r = line.result;
    const id = line.custom_id;
    switch (r.type) {
      case "succeeded":
        return r.message;
      case "errored": {
        const e = r.error?.error;
        const kind = kindForAnthropicType(e?.type, e?.message);
        return modelError(
          kind,
          this.#ctx,
          `batch item ${id}: ${e?.type ?? "error"}: ${e?.message ?? "no message"}`,
        );
      }
      case "canceled":
        return modelError("aborted", this.#ctx, `batch item ${id}: canceled`);
      case "expired":
        // It never ran: retrying it is the right move.
        return modelError("timeout", this.#ctx, `batch item ${id}: expired before processing`);
      default:
        return modelError("other", this.#ctx, `batch item ${id}: unknown result type`);
    }
  }

  /** For logs: never includes the key. */
  toString(): string {
    return redactSecrets(`AnthropicModelApi(${this.provider}, ${this.model})`, this.#ctx.secrets);
  }
}

export function createAnthropicModelApi(
  settings: ProviderSettings,
  env: NodeJS.ProcessEnv = process.env,
): AnthropicModelApi {
  return new AnthropicModelApi(settings, env);
}
