/**
 * The ModelApi seam: chat messages + sampling params in, n completions out.
 * Providers (openai, anthropic, local engine, ...) implement it; nothing upstream
 * knows which one answers.
 */

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface SamplingParams {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  max_tokens?: number;
  stop?: string[];
  /** Top-k alternatives per generated token (0 = chosen-token logprobs only). Undefined = no logprobs. */
  top_logprobs?: number;
  logprobs?: boolean;
}

export interface TopLogprob {
  token: string;
  logprob: number;
}

export interface TokenLogprob {
  token: string;
  logprob: number;
  top?: TopLogprob[];
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export interface Completion {
  text: string;
  finishReason: string;
  logprobs?: TokenLogprob[];
}

export interface ChatRequest {
  messages: ChatMessage[];
  params: SamplingParams;
  /** Number of completions wanted. Providers without native n loop internally. */
  n: number;
  /** Seed for this request (providers that support it pass it on). */
  seed?: number;
  /**
   * One seed per wanted completion, when the caller needs sample i to be the same however
   * samples are grouped into calls (the local engine honours it; remote APIs use `seed`).
   */
  sampleSeeds?: number[];
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface ChatResponse {
  completions: Completion[];
  usage: Usage;
  /** The provider's id for the response, when it gives one. */
  responseId?: string;
}

export type Capability = "logprobs" | "activations" | "steering" | "finetune" | "batch" | "seed" | "n";

export interface ModelApi {
  readonly provider: string;
  readonly model: string;
  readonly capabilities: ReadonlySet<Capability>;
  chat(req: ChatRequest): Promise<ChatResponse>;
  close?(): Promise<void>;
}

export type ModelErrorKind =
  | "rate_limit"
  | "server"
  | "network"
  | "timeout"
  | "bad_request"
  | "auth"
  | "not_found"
  | "content_filter"
  | "aborted"
  | "other";

const RETRYABLE: ReadonlySet<ModelErrorKind> = new Set(["rate_limit", "server", "network", "timeout"]);

/** Every provider maps its failures onto this, so the scheduler decides retries in one place. */
export class ModelApiError extends Error {
  readonly kind: ModelErrorKind;
  readonly status?: number;
  readonly retryAfterMs?: number;
  constructor(
    kind: ModelErrorKind,
    message: string,
    opts: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "ModelApiError";
    this.kind = kind;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
  }
  get retryable(): boolean {
    return RETRYABLE.has(this.kind);
  }
}

/** How a study names one model endpoint; the config's model entry is mapped onto this. */
export interface ProviderSettings {
  /** Registry name: "openai" (and every OpenAI-compatible server), "anthropic", "local", ... */
  provider: string;
  /** The provider's model name (or, for "local", a model directory or built-in organism name). */
  model: string;
  baseUrl?: string;
  /** Name of the environment variable holding the API key. The key itself is never stored. */
  apiKeyEnv?: string;
  /**
   * Extra HTTP headers, as the study writes them: a secret only as `${env:NAME}`, which the
   * provider replaces when it is built (src/config/secrets.ts); never a resolved value.
   */
  headers?: Record<string, string>;
  /** Provider-specific options, validated by the provider itself. */
  options?: Record<string, unknown>;
}

export interface BatchItem {
  customId: string;
  request: ChatRequest;
}

export type BatchStatus =
  | "validating"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "failed"
  | "expired"
  | "cancelled";

/** What identifies one submission at the provider, so an interrupted submit can be found again. */
export interface BatchSubmission {
  /** Unique per submission; sent with the batch where the API has room for it (OpenAI metadata). */
  tag: string;
  /** When the submit call started. */
  since: Date;
  /** Samples over all items (the sum of their n): what an API without n counts as requests. */
  samples: number;
  /** Batch ids already accounted for (other jobs of the run): never a match. */
  exclude: ReadonlySet<string>;
}

/** Bulk APIs (OpenAI Batch, Anthropic Message Batches): submit many requests, poll, collect. */
export interface BatchApi {
  submitBatch(items: BatchItem[], submission?: Pick<BatchSubmission, "tag">): Promise<string>;
  /**
   * The batch an interrupted submit created, if the provider shows one unambiguously (a kill or a
   * lost reply after the provider accepted it); undefined when there is none or it cannot be told.
   */
  findBatch?(submission: BatchSubmission): Promise<string | undefined>;
  batchStatus(batchId: string): Promise<BatchStatus>;
  /** Results by customId; a failed item carries a ModelApiError. */
  batchResults(batchId: string): Promise<Map<string, ChatResponse | ModelApiError>>;
}

export type ModelApiFactory = (settings: ProviderSettings, env: NodeJS.ProcessEnv) => ModelApi;
