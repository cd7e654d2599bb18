/**
 * The `openai` provider: OpenAI Chat Completions through the official SDK, and every
 * OpenAI-compatible server (vLLM, Ollama, llama.cpp server, ...) through `baseUrl`.
 * Also the OpenAI Batch API (JSONL upload → batch → output/error files).
 *
 * Settings:
 *  - provider "openai": api.openai.com unless `baseUrl`; key from `apiKeyEnv` (default
 *    OPENAI_API_KEY), required unless `options.noAuth: true`.
 *  - provider "openai-compatible" / "vllm" / "ollama" / "llamacpp-server" (registry aliases):
 *    `baseUrl` required; no key unless `apiKeyEnv` is set (local servers rarely want one).
 *  - provider "together": Together AI's OpenAI-compatible endpoint (api.together.xyz/v1 unless
 *    `baseUrl`; key from `apiKeyEnv`, default TOGETHER_API_KEY), where its fine-tunes are served.
 *  - options: noAuth, organization, project, timeoutMs (default per-request timeout),
 *    maxTokensField ("max_completion_tokens" for OpenAI, "max_tokens" for compatible servers
 *    by default), capabilities (override the declared set, e.g. drop "logprobs" for a server
 *    without them).
 *
 * The SDK's retries are off (`maxRetries: 0`): the emlab scheduler owns retries.
 */
import { OpenAI, toFile } from "openai";
import { z } from "zod";
import {
  callMapped,
  type ErrorContext,
  kindForStatus,
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
import type {
  BatchApi,
  BatchItem,
  BatchStatus,
  BatchSubmission,
  Capability,
  ChatRequest,
  ChatResponse,
  Completion,
  ModelApi,
  ModelApiError,
  ProviderSettings,
  TokenLogprob,
} from "./types.ts";

type ChatBody = OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
type ChatCompletion = OpenAI.Chat.Completions.ChatCompletion;

const CAPABILITIES = ["logprobs", "activations", "steering", "finetune", "batch", "seed", "n"] as const;

export const OpenAIOptionsSchema = z
  .object({
    noAuth: z.boolean().optional(),
    organization: z.string().min(1).optional(),
    project: z.string().min(1).optional(),
    timeoutMs: z.number().int().positive().optional(),
    maxTokensField: z.enum(["max_tokens", "max_completion_tokens"]).optional(),
    capabilities: z.array(z.enum(CAPABILITIES)).optional(),
  })
  .strict();
export type OpenAIOptions = z.infer<typeof OpenAIOptionsSchema>;

const DEFAULT_TIMEOUT_MS = 600_000;
const OFFICIAL_BASE_URL = "https://api.openai.com/v1";

/** Hosted OpenAI-compatible providers: their endpoint and key variable when the study names neither. */
export const HOSTED_COMPATIBLE: Record<string, { baseUrl: string; keyEnv: string }> = {
  together: { baseUrl: "https://api.together.xyz/v1", keyEnv: "TOGETHER_API_KEY" },
};

/** Build the Chat Completions body for one request (also the body of a batch line). */
export function buildOpenAIChatBody(
  model: string,
  req: ChatRequest,
  opts: { maxTokensField: "max_tokens" | "max_completion_tokens"; allowTopK: boolean; ctx: ErrorContext },
): ChatBody {
  if (!Number.isInteger(req.n) || req.n < 1) {
    throw modelError("bad_request", opts.ctx, `n must be a positive integer, got ${req.n}`);
  }
  if (req.messages.length === 0) throw modelError("bad_request", opts.ctx, "messages is empty");
  const p = req.params;
  const body: ChatBody & Record<string, unknown> = {
    model,
    messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
  };
  if (req.n !== 1) body.n = req.n;
  if (req.seed !== undefined) body.seed = req.seed;
  if (p.temperature !== undefined) body.temperature = p.temperature;
  if (p.top_p !== undefined) body.top_p = p.top_p;
  if (p.max_tokens !== undefined) body[opts.maxTokensField] = p.max_tokens;
  if (p.stop !== undefined && p.stop.length > 0) body.stop = p.stop;
  if (p.top_k !== undefined) {
    // OpenAI has no top_k; silently dropping a sampling parameter would change the experiment.
    if (!opts.allowTopK) {
      throw modelError(
        "bad_request",
        opts.ctx,
        "top_k is not supported by the OpenAI API (use an OpenAI-compatible provider such as vllm for top_k)",
      );
    }
    body.top_k = p.top_k; // vLLM and llama.cpp server accept it as an extra body field
  }
  if (p.logprobs || p.top_logprobs !== undefined) {
    body.logprobs = true;
    if (p.top_logprobs !== undefined) body.top_logprobs = p.top_logprobs;
  }
  return body;
}

function mapLogprobs(
  content: OpenAI.Chat.Completions.ChatCompletionTokenLogprob[] | null | undefined,
): TokenLogprob[] | undefined {
  if (!content) return undefined;
  return content.map((t) => {
    const out: TokenLogprob = { token: t.token, logprob: t.logprob };
    if (t.top_logprobs && t.top_logprobs.length > 0) {
      out.top = t.top_logprobs.map((a) => ({ token: a.token, logprob: a.logprob }));
    }
    return out;
  });
}

/**
 * Map a Chat Completions response body onto ChatResponse (choices in index order). A body that
 * is not JSON (the SDK's raw text, or undefined when empty) is a transport fault ("network");
 * JSON without choices is the server's ("server").
 */
export function openAIChatResponse(body: ChatCompletion, ctx: ErrorContext): ChatResponse {
  const notJson = nonJsonBodyError(ctx, body);
  if (notJson) throw notJson;
  if (typeof body !== "object" || !Array.isArray(body.choices)) {
    throw modelError("server", ctx, "malformed response: no choices array");
  }
  const choices = [...body.choices].sort((a, b) => a.index - b.index);
  const completions: Completion[] = choices.map((c) => {
    const completion: Completion = {
      text: c.message?.content ?? "",
      finishReason: c.finish_reason ?? "unknown",
    };
    const lp = mapLogprobs(c.logprobs?.content);
    if (lp) completion.logprobs = lp;
    return completion;
  });
  return {
    completions,
    usage: {
      promptTokens: body.usage?.prompt_tokens ?? 0,
      completionTokens: body.usage?.completion_tokens ?? 0,
    },
    responseId: body.id,
  };
}

/** Metadata key that tags a batch with emlab's submission id (see findBatch). */
const BATCH_TAG_KEY = "emlab_submission";
/** Clock skew allowed between this machine and the provider when looking for a batch. */
const FIND_BATCH_SLACK_S = 600;
const FIND_BATCH_MAX_SCAN = 2000;

const BATCH_STATUS: Record<string, BatchStatus> = {
  validating: "validating",
  in_progress: "in_progress",
  finalizing: "finalizing",
  completed: "completed",
  failed: "failed",
  expired: "expired",
  // Not terminal yet; the scheduler keeps polling until "cancelled".
  cancelling: "in_progress",
  cancelled: "cancelled",
};

interface BatchOutputLine {
  custom_id?: string;
  response?: { status_code?: number; request_id?: string; body?: unknown } | null;
  error?: { code?: string; message?: string } | null;
}

export class OpenAIModelApi implements ModelApi, BatchApi {
  readonly provider: string;
  readonly model: string;
  readonly capabilities: ReadonlySet<Capability>;
  // Private fields: util.inspect / JSON.stringify of this object never shows the client (or its key).
  readonly #client: OpenAI;
  readonly #ctx: ErrorContext;
  readonly #timeoutMs: number;
  readonly #maxTokensField: "max_tokens" | "max_completion_tokens";
  readonly #official: boolean;

  constructor(settings: ProviderSettings, env: NodeJS.ProcessEnv = process.env) {
    const opts = parseProviderOptions(settings, OpenAIOptionsSchema);
    if (!settings.model)
      throw new ProviderSettingsError(`provider "${settings.provider}": model is empty`, ["model"]);
    this.provider = settings.provider;
    this.model = settings.model;
    this.#official = settings.provider === "openai";
    const hosted = HOSTED_COMPATIBLE[settings.provider];
    const baseUrl = checkBaseUrl(settings) ?? hosted?.baseUrl;
    if (!this.#official && baseUrl === undefined) {
      throw new ProviderSettingsError(
        `provider "${settings.provider}" (model "${settings.model}") is an OpenAI-compatible server: baseUrl is required (e.g. http://localhost:8000/v1)`,
        ["provider"],
      );
    }
    const apiKey = readApiKey(settings, env, this.#official ? "OPENAI_API_KEY" : hosted?.keyEnv);
    // `${env:NAME}` references in headers are read here; only the provider holds their values.
    const extra = resolveHeaders(settings, env);
    this.#ctx = {
      provider: settings.provider,
      model: settings.model,
      secrets: [...(apiKey ? [apiKey] : []), ...extra.secrets],
    };
    const ownAuthorization = Object.keys(extra.headers).some((h) => h.toLowerCase() === "authorization");
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxTokensField = opts.maxTokensField ?? (this.#official ? "max_completion_tokens" : "max_tokens");
    const declared: Capability[] = this.#official
      ? ["logprobs", "seed", "n", "batch"]
      : ["logprobs", "seed", "n"];
    this.capabilities = new Set(opts.capabilities ?? declared);
    this.#client = new OpenAI({
      // Everything explicit: the SDK would otherwise read OPENAI_BASE_URL / OPENAI_ADMIN_KEY /
      // OPENAI_ORG_ID from process.env behind the study file's back.
      apiKey: apiKey ?? "no-auth",
      adminAPIKey: null,
      organization: opts.organization ?? null,
      project: opts.project ?? null,
      baseURL: baseUrl ?? OFFICIAL_BASE_URL,
      maxRetries: 0,
      timeout: this.#timeoutMs,
      // Without a key, send no Authorization header at all rather than a fake one (unless the
      // study sends its own, e.g. "Bearer ${env:MY_TOKEN}").
      defaultHeaders: { ...extra.headers, ...(apiKey || ownAuthorization ? {} : { Authorization: null }) },
    });
  }

  #body(req: ChatRequest): ChatBody {
    return buildOpenAIChatBody(this.model, req, {
      maxTokensField: this.#maxTokensField,
      allowTopK: !this.#official,
      ctx: this.#ctx,
    });
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    const body = this.#body(req);
    const timeoutMs = req.timeoutMs ?? this.#timeoutMs;
    const completion = await callMapped(this.#ctx, { signal: req.signal, timeoutMs }, (signal) =>
      this.#client.chat.completions.create(body, { signal, timeout: timeoutMs, maxRetries: 0 }),
    );
    return openAIChatResponse(completion, this.#ctx);
  }

  async submitBatch(items: BatchItem[], submission?: Pick<BatchSubmission, "tag">): Promise<string> {
    if (items.length === 0) throw modelError("bad_request", this.#ctx, "submitBatch: no items");
    const seen = new Set<string>();
    const lines: string[] = [];
    for (const item of items) {
      if (!item.customId)
        throw modelError("bad_request", this.#ctx, "submitBatch: an item has an empty customId");
      if (seen.has(item.customId)) {
        throw modelError("bad_request", this.#ctx, `submitBatch: duplicate customId "${item.customId}"`);
      }
      seen.add(item.customId);
      lines.push(
        JSON.stringify({
          custom_id: item.customId,
          method: "POST",
          url: "/v1/chat/completions",
          body: this.#body(item.request),
        }),
      );
    }
    const jsonl = Buffer.from(lines.join("\n") + "\n", "utf8");
    const t = { timeoutMs: this.#timeoutMs };
    const file = await callMapped(this.#ctx, t, async (signal) =>
      this.#client.files.create(
        { file: await toFile(jsonl, "emlab-batch.jsonl", { type: "application/jsonl" }), purpose: "batch" },
        { signal },
      ),
    );
    const batch = await callMapped(this.#ctx, t, (signal) =>
      this.#client.batches.create(
        {
          input_file_id: file.id,
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
          ...(submission ? { metadata: { [BATCH_TAG_KEY]: submission.tag } } : {}),
        },
        { signal },
      ),
    );
    return batch.id;
  }

  /** The batch whose metadata carries the submission's tag (newest first, back to shortly before `since`). */
  async findBatch(submission: BatchSubmission): Promise<string | undefined> {
    const oldest = submission.since.getTime() / 1000 - FIND_BATCH_SLACK_S;
    return callMapped(this.#ctx, { timeoutMs: this.#timeoutMs }, async (signal) => {
      let seen = 0;
      for await (const b of this.#client.batches.list({ limit: 100 }, { signal })) {
        if (b.metadata?.[BATCH_TAG_KEY] === submission.tag && !submission.exclude.has(b.id)) return b.id;
        if (b.created_at < oldest || ++seen >= FIND_BATCH_MAX_SCAN) return undefined;
      }
      return undefined;
    });
  }

  async batchStatus(batchId: string): Promise<BatchStatus> {
    const batch = await callMapped(this.#ctx, { timeoutMs: this.#timeoutMs }, (signal) =>
      this.#client.batches.retrieve(batchId, { signal }),
    );
    const status = BATCH_STATUS[batch.status];
    if (!status) throw modelError("other", this.#ctx, `batch ${batchId}: unknown status "${batch.status}"`);
    return status;
  }

  async batchResults(batchId: string): Promise<Map<string, ChatResponse | ModelApiError>> {
    const t = { timeoutMs: this.#timeoutMs };
    const batch = await callMapped(this.#ctx, t, (signal) =>
      this.#client.batches.retrieve(batchId, { signal }),
    );
    const status = BATCH_STATUS[batch.status];
    if (status === "failed") {
      const why = (batch.errors?.data ?? [])
        .map((e) => `${e.code ?? "error"}${e.line != null ? ` (line ${e.line})` : ""}: ${e.message ?? ""}`)
        .join("; ");
      throw modelError("bad_request", this.#ctx, `batch ${batchId} failed: ${why || "no reason given"}`);
    }
    if (status !== "completed" && status !== "expired" && status !== "cancelled") {
      throw modelError("other", this.#ctx, `batch ${batchId} is ${batch.status}: results are not ready yet`);
    }
    const results = new Map<string, ChatResponse | ModelApiError>();
    // Output file: successes (and per-line non-200s); error file: failed/expired lines.
    for (const fileId of [batch.output_file_id, batch.error_file_id]) {
      if (!fileId) continue;
      const text = await callMapped(this.#ctx, t, async (signal) => {
        const res = await this.#client.files.content(fileId, { signal });
        return res.text();
      });
      this.#collectLines(text, fileId, results);
    }
    return results;
  }

  #collectLines(text: string, fileId: string, into: Map<string, ChatResponse | ModelApiError>): void {
    const lines = text.split("\n");
    lines.forEach((raw, i) => {
      if (raw.trim() === "") return;
      let line: BatchOutputLine;
      try {
        line = JSON.parse(raw) as BatchOutputLine;
      } catch {
        throw modelError("server", this.#ctx, `batch file ${fileId} line ${i + 1}: not valid JSON`);
      }
      const id = line.custom_id;
      if (typeof id !== "string") {
        throw modelError("server", this.#ctx, `batch file ${fileId} line ${i + 1}: no custom_id`);
      }
      into.set(id, this.#lineResult(line, id));
    });
  }

  #lineResult(line: BatchOutputLine, id: string): ChatResponse | ModelApiError {
    const ctx = this.#ctx;
    const res = line.response;
    if (res && res.status_code === 200 && res.body) {
      try {
        return openAIChatResponse(res.body as ChatCompletion, ctx);
      } catch (err) {
        return err as ModelApiError;
      }
    }
    if (res && typeof res.status_code === "number") {
      const err = (res.body as { error?: { message?: string; code?: string; type?: string } } | undefined)
        ?.error;
      const kind = kindForStatus(
        res.status_code,
        `${err?.code ?? ""} ${err?.type ?? ""} ${err?.message ?? ""}`,
      );
      const rid = res.request_id ? ` (request id ${res.request_id})` : "";
      return modelError(
        kind,
        ctx,
        `batch item ${id}: HTTP ${res.status_code}: ${err?.message ?? "no message"}${rid}`,
        {
          status: res.status_code,
        },
      );
    }
    const code = line.error?.code ?? "error";
    // An expired item never ran: retrying it (in a new batch or live) is the right move.
    const kind = code === "batch_expired" ? "timeout" : code === "batch_cancelled" ? "aborted" : "other";
    return modelError(kind, ctx, `batch item ${id}: ${code}: ${line.error?.message ?? "no message"}`);
  }

  /** For logs: never includes the key. */
  toString(): string {
    return redactSecrets(`OpenAIModelApi(${this.provider}, ${this.model})`, this.#ctx.secrets);
  }
}

export function createOpenAIModelApi(
  settings: ProviderSettings,
  env: NodeJS.ProcessEnv = process.env,
): OpenAIModelApi {
  return new OpenAIModelApi(settings, env);
}
