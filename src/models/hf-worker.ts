/**
 * The `hf-worker` provider: a ModelApi over emlab's Python worker (worker/, PyTorch + HF
 * transformers + PEFT), which a researcher starts where the model lives (`emlab worker start`)
 * and reaches over HTTP, often through an SSH tunnel. docs/worker-protocol.md is the contract.
 *
 * Chat is OpenAI's Chat Completions plus the protocol's `emlab` extension (hook edits, one
 * seed per sample, top_k); the interp reads (activations, logits) come back as safetensors
 * bytes, read here in memory.
 *
 * Settings: `model` is the worker's served name (or a finished job's `NAME:ft:JOB_ID`),
 * checked against GET /v1/models on first use; `baseUrl` defaults to http://127.0.0.1:8765;
 * the key comes from `apiKeyEnv` (required when named), else from EMLAB_WORKER_API_KEY when
 * that is set (a worker started without a key needs none); `headers` as for every provider.
 * Options: noAuth, timeoutMs (per request, default 600 s), capabilities (override the
 * declared set).
 *
 * HTTP goes through node:http rather than fetch: undici's fetch gives up waiting for response
 * headers after 300 s, and a worker generating many long samples on a large model can take
 * longer than that before it answers. Our own deadline (timeoutMs) is the only one.
 */
import http from "node:http";
import https from "node:https";
import { z } from "zod";
import {
  callMapped,
  type ErrorContext,
  kindForStatus,
  modelError,
  NETWORK_CODES,
  parseRetryAfterMs,
  redactSecrets,
  toModelApiError,
} from "./errors.ts";
import { type HookEdit, type HookEditInput, HookEditsSchema, HookNameSchema } from "./hook-edits.ts";
import { buildOpenAIChatBody, openAIChatResponse } from "./openai.ts";
import {
  checkBaseUrl,
  ProviderSettingsError,
  parseProviderOptions,
  readApiKey,
  resolveHeaders,
} from "./provider-settings.ts";
import type { Capability, ChatRequest, ChatResponse, ModelApi, ProviderSettings } from "./types.ts";

export const HF_WORKER_DEFAULT_URL = "http://127.0.0.1:8765";
/** The variable the worker itself reads its key from, and the provider's default. */
export const HF_WORKER_KEY_ENV = "EMLAB_WORKER_API_KEY";

const CAPABILITIES = ["activations", "steering", "finetune", "logprobs", "seed", "n"] as const;
const DEFAULT_TIMEOUT_MS = 600_000;
const ACTIVATIONS_FORMAT = "emlab.worker.activations.v1";

export const HfWorkerOptionsSchema = z
  .object({
    noAuth: z.boolean().optional(),
    timeoutMs: z.number().int().positive().optional(),
    capabilities: z.array(z.enum(CAPABILITIES)).optional(),
  })
  .strict();
export type HfWorkerOptions = z.infer<typeof HfWorkerOptionsSchema>;

// ---- wire schemas ------------------------------------------------------------------------

/** GET /v1/emlab/info. */
export const WorkerInfoSchema = z.object({
  model: z.string(),
  model_type: z.string(),
  n_layers: z.number().int().nonnegative(),
  d_model: z.number().int().positive(),
  vocab_size: z.number().int().positive(),
  max_positions: z.number().int().positive(),
  dtype: z.string(),
  device: z.string(),
  adapter: z.string().nullable(),
  eos_token_ids: z.array(z.number().int().nonnegative()),
  assistant_header_tokens: z.number().int().nonnegative(),
  hook_names: z.array(z.string()),
  capabilities: z.array(z.string()),
  versions: z.record(z.string(), z.string().nullable()),
});
export type WorkerInfo = z.infer<typeof WorkerInfoSchema>;

const ModelListSchema = z.object({ data: z.array(z.object({ id: z.string() })) });

const TokenizeReplySchema = z.object({
  token_ids: z.array(z.number().int().nonnegative()),
  text: z.string(),
});

const MessageSchema = z
  .object({ role: z.enum(["system", "user", "assistant"]), content: z.string() })
  .strict();

/** One input of an activations read: token ids, or a conversation and the answer to it. */
export const ActivationInputSchema = z.union([
  z.object({ token_ids: z.array(z.number().int().nonnegative()).min(1) }).strict(),
  z.object({ messages: z.array(MessageSchema).min(1), answer: z.string() }).strict(),
]);
export type ActivationInput = z.infer<typeof ActivationInputSchema>;

export const ActivationReduceSchema = z.enum(["all", "last", "mean", "answer_mean", "answer_last"]);
export type ActivationReduce = z.infer<typeof ActivationReduceSchema>;

const ActivationsCallSchema = z
  .object({
    inputs: z.array(ActivationInputSchema).min(1),
    hooks: z.array(HookNameSchema).min(1),
    reduce: ActivationReduceSchema,
  })
  .superRefine((v, ctx) => {
    if (!v.reduce.startsWith("answer_")) return;
    v.inputs.forEach((input, i) => {
      if ("token_ids" in input)
        ctx.addIssue({
          code: "custom",
          path: ["inputs", i],
          message: `reduce "${v.reduce}" needs {messages, answer} inputs (token ids have no answer tokens)`,
        });
    });
  });

const LogitsCallSchema = z
  .object({
    inputs: z.array(z.object({ token_ids: z.array(z.number().int().nonnegative()).min(1) }).strict()).min(1),
    positions: z.enum(["all", "last"]),
  })
  .strict();

export const TokenizeInputSchema = z.union([
  z
    .object({ messages: z.array(MessageSchema).min(1), add_generation_prompt: z.boolean().default(false) })
    .strict(),
  z.object({ text: z.string() }).strict(),
]);
export type TokenizeInput = z.input<typeof TokenizeInputSchema>;

export interface WorkerTensor {
  shape: number[];
  data: Float32Array;
}

export interface WorkerActivations {
  /** Reduced: one tensor per hook (named the hook), [n_inputs, d]. "all": `HOOK/i`, [T_i, d]. */
  tensors: Map<string, WorkerTensor>;
  /** Tokens of each input. */
  tokenCounts: number[];
  /** The answer tokens' positions of each input (empty for token-id inputs). */
  answerPositions: number[][];
}

export interface WorkerLogits {
  /** Per input: [T_i, V] for positions "all", [1, V] for "last". */
  logits: WorkerTensor[];
  tokenCounts: number[];
}

// ---- HTTP --------------------------------------------------------------------------------

/** What one request sends: a JSON body (POST) or none (GET), and how long it may take. */
export interface WorkerRequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** Overall deadline of this request; default the connection's. */
  timeoutMs?: number;
}

interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

// The socket and DNS failures the other providers call "network" (a timeout among them is
// ours to report as one): here they mean the worker cannot be reached.
const unreachable = (code: string) => NETWORK_CODES.has(code) && !/TIMEOUT|TIMEDOUT/.test(code);

function errorCode(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 5; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string") return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * One HTTP connection to a worker: its base URL, the Authorization and extra headers, the
 * error context (whose secrets every message is scrubbed of). Requests map every failure
 * onto ModelApiError kinds as the other providers do. The key and the secrets live in private
 * fields, so inspecting or serialising the object never shows them. Exported for the worker's training
 * jobs client, which speaks to the same server.
 */
export class WorkerConnection {
  readonly baseUrl: string;
  // Private: it holds the secrets to scrub, which inspecting the object must not show.
  readonly #ctx: ErrorContext;
  readonly timeoutMs: number;
  /** Which variable the key was read from (for the 401 message), if any. */
  readonly keyEnv: string | undefined;
  readonly #headers: Record<string, string>;
  readonly #agent: http.Agent;

  constructor(opts: {
    baseUrl: string;
    ctx: ErrorContext;
    timeoutMs: number;
    apiKey?: string;
    keyEnv?: string;
    headers?: Record<string, string>;
  }) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.#ctx = opts.ctx;
    this.timeoutMs = opts.timeoutMs;
    this.keyEnv = opts.keyEnv;
    this.#headers = { ...(opts.headers ?? {}) };
    const ownAuthorization = Object.keys(this.#headers).some((h) => h.toLowerCase() === "authorization");
    if (opts.apiKey && !ownAuthorization) this.#headers.Authorization = `Bearer ${opts.apiKey}`;
    const url = new URL(this.baseUrl);
    this.#agent =
      url.protocol === "https:" ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  }

  /** A JSON request; the reply's JSON (validated by `schema` when given). */
  async json<T = unknown>(
    method: "GET" | "POST",
    path: string,
    opts: WorkerRequestOptions & { schema?: z.ZodType<T> } = {},
  ): Promise<T> {
    const reply = await this.#request(method, path, opts, "application/json");
    const where = `${method} ${path}`;
    const text = reply.body.toString("utf8");
    if (text === "")
      throw modelError("network", this.#ctx, `${where}: the response body was empty (JSON expected)`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // A cut-off body is a transport fault like a dropped connection (retried like one).
      throw modelError(
        "network",
        this.#ctx,
        `${where}: the response body was cut off or is not valid JSON (${text.length} characters)`,
      );
    }
    if (!opts.schema) return parsed as T;
    const checked = opts.schema.safeParse(parsed);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      throw modelError(
        "server",
        this.#ctx,
        `${where}: the reply does not follow the worker protocol at ${issue.path.join(".") || "(top level)"}: ${issue.message}`,
      );
    }
    return checked.data;
  }

  /** A JSON request whose reply is bytes (safetensors). */
  async bytes(method: "GET" | "POST", path: string, opts: WorkerRequestOptions = {}): Promise<Buffer> {
    return (await this.#request(method, path, opts, "application/octet-stream")).body;
  }

  /** Who fails, for messages, and what to scrub from them (for errors built outside). */
  errorContext(): ErrorContext {
    return this.#ctx;
  }

  /** Closes the kept-alive sockets. */
  close(): void {
    this.#agent.destroy();
  }

  async #request(
    method: "GET" | "POST",
    path: string,
    opts: WorkerRequestOptions,
    accept: string,
  ): Promise<RawReply> {
    const where = `${method} ${path}`;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const reply = await callMapped(this.#ctx, { signal: opts.signal, timeoutMs }, async (signal) => {
      try {
        return await this.#send(method, path, opts.body, accept, signal);
      } catch (err) {
        // Aborts go back to callMapped, which tells our deadline (timeout) from the caller's.
        if ((err as { name?: string } | null)?.name === "AbortError") throw err;
        const code = errorCode(err);
        if (code && unreachable(code)) {
          throw modelError(
            "network",
            this.#ctx,
            `the worker at ${this.baseUrl} is not reachable (is it running? is the SSH tunnel up?): ${where}: ${code}: ${(err as Error).message}`,
          );
        }
        throw toModelApiError(err, this.#ctx);
      }
    });
    if (reply.status >= 200 && reply.status < 300) return reply;
    throw this.#statusError(where, reply);
  }

  #send(method: string, path: string, body: unknown, accept: string, signal: AbortSignal): Promise<RawReply> {
    const url = new URL(this.baseUrl + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), "utf8");
    const headers: Record<string, string> = { accept, ...this.#headers };
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }
    const lib = url.protocol === "https:" ? https : http;
    return new Promise<RawReply>((resolve, reject) => {
      const req = lib.request(url, { method, headers, signal, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("aborted", () => reject(Object.assign(new Error("response aborted"), { code: "ECONNRESET" })));
        res.on("end", () => {
          if (!res.complete) {
            reject(Object.assign(new Error("the connection closed mid-response"), { code: "ECONNRESET" }));
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      req.on("error", reject);
      req.end(payload);
    });
  }

  #statusError(where: string, reply: RawReply) {
    let err: { message?: unknown; type?: unknown; param?: unknown; code?: unknown } | undefined;
    try {
      err = (JSON.parse(reply.body.toString("utf8")) as { error?: typeof err }).error;
    } catch {
      err = undefined;
    }
    const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
    const message = str(err?.message);
    const type = str(err?.type);
    const code = str(err?.code);
    const param = str(err?.param);
    const kind = kindForStatus(reply.status, `${code ?? ""} ${type ?? ""} ${message ?? ""}`);
    const tag = [type, code].filter(Boolean).join("/");
    let detail =
      `${where}: HTTP ${reply.status}${tag ? ` ${tag}` : ""}: ` +
      (message ?? `(no error message; ${reply.body.length} bytes of body)`);
    if (param && !detail.includes(param)) detail += ` (at ${param})`;
    if (kind === "auth")
      detail += this.keyEnv
        ? ` (the key sent is ${this.keyEnv}'s: is it the key the worker was started with?)`
        : ` (no key was sent: set ${HF_WORKER_KEY_ENV}, or name the variable holding the worker's key in api_key_env)`;
    const retryAfterMs =
      kind === "rate_limit" || kind === "server" ? parseRetryAfterMs(reply.headers) : undefined;
    return modelError(kind, this.#ctx, detail, { status: reply.status, retryAfterMs });
  }

  toString(): string {
    return redactSecrets(`WorkerConnection(${this.baseUrl})`, this.#ctx.secrets);
  }
}

/**
 * The connection a `ProviderSettings` entry names: base URL (default 127.0.0.1:8765), the key
 * (`apiKeyEnv`, required when named; else EMLAB_WORKER_API_KEY when it is set; none with
 * options.noAuth), `${env:NAME}` headers. Throws ProviderSettingsError / an auth error.
 */
export function connectWorker(
  settings: ProviderSettings,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs: number = DEFAULT_TIMEOUT_MS,
): WorkerConnection {
  const baseUrl = checkBaseUrl(settings) ?? HF_WORKER_DEFAULT_URL;
  // The default variable is optional: a worker started without --api-key wants no key.
  const defaultEnv =
    settings.apiKeyEnv === undefined && env[HF_WORKER_KEY_ENV]?.trim() ? HF_WORKER_KEY_ENV : undefined;
  const apiKey = readApiKey(settings, env, defaultEnv);
  const extra = resolveHeaders(settings, env);
  return new WorkerConnection({
    baseUrl,
    timeoutMs,
    apiKey,
    keyEnv: apiKey ? (settings.apiKeyEnv ?? defaultEnv) : undefined,
    headers: extra.headers,
    ctx: {
      provider: settings.provider,
      model: settings.model,
      secrets: [...(apiKey ? [apiKey] : []), ...extra.secrets],
    },
  });
}

/**
 * One request to a worker with the settings' auth and headers, the reply's JSON back, every
 * failure a ModelApiError (the small helper for callers that need no ModelApi).
 */
export async function workerRequest<T = unknown>(
  conn: WorkerConnection,
  method: "GET" | "POST",
  path: string,
  opts: WorkerRequestOptions & { schema?: z.ZodType<T> } = {},
): Promise<T> {
  return conn.json(method, path, opts);
}

// ---- safetensors from memory -------------------------------------------------------------

const MAX_HEADER_BYTES = 100_000_000;

/**
 * Reads float32 safetensors bytes (the worker's activation and logit replies). Checks the
 * header length, the JSON header, each tensor's dtype (F32 only), shape and offsets, and that
 * the tensors tile the data section. `where` names the reply in errors. A data section
 * shorter than the header says is "truncated" (the caller treats it as a transport fault).
 */
export function parseSafetensorsBuffer(
  buf: Buffer,
  where: string,
): { tensors: Map<string, WorkerTensor>; metadata: Record<string, string> } {
  const fail = (msg: string, truncated = false) =>
    Object.assign(new Error(`${where}: ${msg}`), { truncated });
  if (buf.length < 8) throw fail(`${buf.length} bytes, shorter than the 8-byte header length`, true);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES) throw fail(`header length ${headerLen} is implausibly large`);
  if (8 + headerLen > buf.length)
    throw fail(`header length ${headerLen} runs past the end of the ${buf.length} bytes`, true);
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString("utf8"));
  } catch (e) {
    throw fail(`header is not valid JSON (${(e as Error).message.slice(0, 200)})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header))
    throw fail("header is not a JSON object");
  const dataStart = 8 + headerLen;
  const dataBytes = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, WorkerTensor>();
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw))
        throw fail("__metadata__ is not an object of strings");
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") throw fail(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof t !== "object" || t === null) throw fail(`tensor "${name}": entry is not an object`);
    if (t.dtype !== "F32") throw fail(`tensor "${name}": dtype ${JSON.stringify(t.dtype)}, expected F32`);
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw fail(`tensor "${name}": shape is not a list of non-negative integers`);
    const offsets = t.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((d) => Number.isInteger(d) && d >= 0) ||
      offsets[0] > offsets[1]
    )
      throw fail(`tensor "${name}": data_offsets is not [begin, end]`);
    const [begin, end] = offsets as [number, number];
    if (end > dataBytes)
      throw fail(`tensor "${name}": data_offsets end ${end} past the ${dataBytes}-byte data section`, true);
    const numel = (shape as number[]).reduce((a, d) => a * d, 1);
    if (end - begin !== numel * 4)
      throw fail(
        `tensor "${name}": shape [${shape.join(", ")}] needs ${numel * 4} bytes, data_offsets span ${end - begin}`,
      );
    spans.push({ name, begin, end });
    // Copied: the tensor's bytes may sit at an offset that is not a multiple of 4.
    const data = new Float32Array(numel);
    new Uint8Array(data.buffer).set(buf.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { shape: [...(shape as number[])], data });
  }
  spans.sort((a, b) => a.begin - b.begin);
  let at = 0;
  for (const s of spans) {
    if (s.begin !== at) throw fail(`tensor "${s.name}": data_offsets overlap or leave a gap`);
    at = s.end;
  }
  if (at !== dataBytes) throw fail(`${dataBytes - at} bytes after the last tensor`);
  return { tensors, metadata };
}

// ---- the provider ------------------------------------------------------------------------

/** State shared by a worker API and its withEdits views. */
interface Shared {
  conn: WorkerConnection;
  modelCheck?: Promise<void>;
  info?: Promise<WorkerInfo>;
}

export class HfWorkerModelApi implements ModelApi {
  readonly provider: string;
  readonly model: string;
  readonly capabilities: ReadonlySet<Capability>;
  /** The edits every chat and read of this view sends (validated; positions filled in). */
  readonly edits: readonly HookEdit[];
  readonly #shared: Shared;

  constructor(settings: ProviderSettings, env?: NodeJS.ProcessEnv);
  constructor(view: { from: HfWorkerModelApi; edits: HookEdit[] });
  constructor(
    a: ProviderSettings | { from: HfWorkerModelApi; edits: HookEdit[] },
    env: NodeJS.ProcessEnv = process.env,
  ) {
    if ("from" in a) {
      this.provider = a.from.provider;
      this.model = a.from.model;
      this.capabilities = a.from.capabilities;
      this.#shared = a.from.#shared;
      this.edits = a.edits;
      return;
    }
    const opts = parseProviderOptions(a, HfWorkerOptionsSchema);
    if (!a.model)
      throw new ProviderSettingsError(`provider "${a.provider}": model is empty (the worker's served name)`, [
        "model",
      ]);
    this.provider = a.provider;
    this.model = a.model;
    this.capabilities = new Set(opts.capabilities ?? CAPABILITIES);
    this.#shared = { conn: connectWorker(a, env, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) };
    this.edits = [];
  }

  get connection(): WorkerConnection {
    return this.#shared.conn;
  }

  get #ctx(): ErrorContext {
    return this.#shared.conn.errorContext();
  }

  /**
   * A view of the same worker whose chats and reads also send these edits (after this view's
   * own). Validated here: a bad edit is a bad_request naming its field (`edits.0.vector`).
   */
  withEdits(edits: readonly HookEditInput[]): HfWorkerModelApi {
    return new HfWorkerModelApi({ from: this, edits: [...this.edits, ...this.#parseEdits(edits)] });
  }

  #parseEdits(edits: readonly HookEditInput[] | undefined): HookEdit[] {
    if (edits === undefined) return [];
    const parsed = HookEditsSchema.safeParse(edits);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    throw modelError(
      "bad_request",
      this.#ctx,
      `invalid hook edit at edits.${issue.path.join(".")}: ${issue.message}`,
    );
  }

  #invalid(what: string, error: z.ZodError): never {
    const issue = error.issues[0];
    throw modelError(
      "bad_request",
      this.#ctx,
      `${what}: invalid ${issue.path.join(".") || "input"}: ${issue.message}`,
    );
  }

  /** Checks once that the worker serves this model (an unknown name lists what it serves). */
  async #ensureModel(signal?: AbortSignal): Promise<void> {
    const shared = this.#shared;
    shared.modelCheck ??= (async () => {
      const list = await shared.conn.json("GET", "/v1/models", { schema: ModelListSchema });
      const ids = list.data.map((m) => m.id);
      if (!ids.includes(this.model))
        throw modelError(
          "not_found",
          this.#ctx,
          `the worker at ${shared.conn.baseUrl} does not serve "${this.model}"; it serves: ${ids.join(", ") || "(nothing)"} (set the model entry's model to one of them)`,
        );
    })();
    const check = shared.modelCheck;
    try {
      await this.#abortable(check, signal);
    } catch (e) {
      // A failed check (worker down, wrong name) is asked again next time.
      if (shared.modelCheck === check && !signal?.aborted) shared.modelCheck = undefined;
      throw e;
    }
  }

  /** The worker's model and environment (GET /v1/emlab/info), asked once. */
  async info(signal?: AbortSignal): Promise<WorkerInfo> {
    const shared = this.#shared;
    shared.info ??= shared.conn.json("GET", "/v1/emlab/info", { schema: WorkerInfoSchema });
    const info = shared.info;
    try {
      return await this.#abortable(info, signal);
    } catch (e) {
      if (shared.info === info && !signal?.aborted) shared.info = undefined;
      throw e;
    }
  }

  /**
   * A shared request awaited under one caller's signal: that caller's abort ends its wait, not
   * the request the other callers share.
   */
  #abortable<T>(shared: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (!signal) return shared;
    if (signal.aborted) return Promise.reject(modelError("aborted", this.#ctx, "request aborted"));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(modelError("aborted", this.#ctx, "request aborted"));
      signal.addEventListener("abort", onAbort, { once: true });
      shared.then(
        (v) => {
          signal.removeEventListener("abort", onAbort);
          resolve(v);
        },
        (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      );
    });
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    const body = buildOpenAIChatBody(this.model, req, {
      maxTokensField: "max_tokens",
      allowTopK: true,
      ctx: this.#ctx,
    }) as unknown as Record<string, unknown>;
    // The worker takes top_k, per-sample seeds and edits in the protocol's extension object.
    const emlab: Record<string, unknown> = {};
    if (body.top_k !== undefined) {
      emlab.top_k = body.top_k;
      delete body.top_k;
    }
    if (req.sampleSeeds !== undefined) {
      if (
        req.sampleSeeds.length !== req.n ||
        !req.sampleSeeds.every((s) => Number.isSafeInteger(s) && s >= 0)
      )
        throw modelError(
          "bad_request",
          this.#ctx,
          `sampleSeeds must be ${req.n} non-negative integers (one per completion), got ${JSON.stringify(req.sampleSeeds)}`,
        );
      emlab.sample_seeds = req.sampleSeeds;
    }
    if (this.edits.length > 0) emlab.edits = this.edits;
    if (Object.keys(emlab).length > 0) body.emlab = emlab;
    await this.#ensureModel(req.signal);
    const reply = await this.#shared.conn.json("POST", "/v1/chat/completions", {
      body,
      signal: req.signal,
      timeoutMs: req.timeoutMs,
    });
    return openAIChatResponse(reply as Parameters<typeof openAIChatResponse>[0], this.#ctx);
  }

  #safetensors(bytes: Buffer, where: string) {
    try {
      return parseSafetensorsBuffer(bytes, `${where}: the safetensors reply`);
    } catch (e) {
      const truncated = (e as { truncated?: boolean }).truncated === true;
      throw modelError(truncated ? "network" : "server", this.#ctx, (e as Error).message);
    }
  }

  #intListMeta(metadata: Record<string, string>, key: string, where: string): unknown {
    const raw = metadata[key];
    if (raw === undefined) throw modelError("server", this.#ctx, `${where}: reply metadata lacks ${key}`);
    try {
      return JSON.parse(raw);
    } catch {
      throw modelError("server", this.#ctx, `${where}: reply metadata ${key} is not JSON`);
    }
  }

  /**
   * Residual-stream reads at `hooks` (POST /v1/emlab/activations), with this view's edits and
   * `edits` applied (reads see the edited values).
   */
  async activations(
    inputs: readonly ActivationInput[],
    opts: {
      hooks: readonly string[];
      reduce: ActivationReduce;
      edits?: readonly HookEditInput[];
      signal?: AbortSignal;
    },
  ): Promise<WorkerActivations> {
    const where = "POST /v1/emlab/activations";
    const call = ActivationsCallSchema.safeParse({ inputs, hooks: opts.hooks, reduce: opts.reduce });
    if (!call.success) this.#invalid("activations", call.error);
    const edits = [...this.edits, ...this.#parseEdits(opts.edits)];
    await this.#ensureModel(opts.signal);
    const bytes = await this.#shared.conn.bytes("POST", "/v1/emlab/activations", {
      body: {
        model: this.model,
        hooks: call.data.hooks,
        inputs: call.data.inputs,
        reduce: call.data.reduce,
        ...(edits.length > 0 ? { edits } : {}),
      },
      signal: opts.signal,
    });
    const { tensors, metadata } = this.#safetensors(bytes, where);
    if (metadata.format !== ACTIVATIONS_FORMAT)
      throw modelError(
        "server",
        this.#ctx,
        `${where}: reply format ${JSON.stringify(metadata.format)}, expected ${ACTIVATIONS_FORMAT}`,
      );
    const n = call.data.inputs.length;
    const tokenCounts = z
      .array(z.number().int().nonnegative())
      .length(n)
      .safeParse(this.#intListMeta(metadata, "token_counts", where));
    const answerPositions = z
      .array(z.array(z.number().int().nonnegative()))
      .length(n)
      .safeParse(this.#intListMeta(metadata, "answer_positions", where));
    if (!tokenCounts.success || !answerPositions.success)
      throw modelError(
        "server",
        this.#ctx,
        `${where}: reply metadata token_counts / answer_positions are not ${n} lists of token positions`,
      );
    // The tensors the protocol promises, with the shapes it promises.
    const expect = (name: string, rows: number) => {
      const t = tensors.get(name);
      if (t?.shape.length !== 2 || t.shape[0] !== rows)
        throw modelError(
          "server",
          this.#ctx,
          `${where}: reply ${t ? `tensor "${name}" has shape [${t.shape.join(", ")}]` : `lacks tensor "${name}"`}, expected [${rows}, d]`,
        );
    };
    for (const hook of call.data.hooks) {
      if (call.data.reduce !== "all") expect(hook, n);
      else for (const [i, T] of tokenCounts.data.entries()) expect(`${hook}/${i}`, T);
    }
    return { tensors, tokenCounts: tokenCounts.data, answerPositions: answerPositions.data };
  }

  /** Logits of token-id inputs (POST /v1/emlab/logits), at every position or the last. */
  async logits(
    inputs: readonly { token_ids: readonly number[] }[],
    opts: { positions: "all" | "last"; edits?: readonly HookEditInput[]; signal?: AbortSignal },
  ): Promise<WorkerLogits> {
    const where = "POST /v1/emlab/logits";
    const call = LogitsCallSchema.safeParse({ inputs, positions: opts.positions });
    if (!call.success) this.#invalid("logits", call.error);
    const edits = [...this.edits, ...this.#parseEdits(opts.edits)];
    await this.#ensureModel(opts.signal);
    const bytes = await this.#shared.conn.bytes("POST", "/v1/emlab/logits", {
      body: {
        model: this.model,
        inputs: call.data.inputs,
        positions: call.data.positions,
        ...(edits.length > 0 ? { edits } : {}),
      },
      signal: opts.signal,
    });
    const { tensors, metadata } = this.#safetensors(bytes, where);
    const counts = z
      .array(z.number().int().nonnegative())
      .length(inputs.length)
      .safeParse(this.#intListMeta(metadata, "token_counts", where));
    if (!counts.success)
      throw modelError(
        "server",
        this.#ctx,
        `${where}: reply metadata token_counts is not ${inputs.length} counts`,
      );
    const logits = call.data.inputs.map((input, i) => {
      const t = tensors.get(`logits/${i}`);
      const rows = opts.positions === "all" ? input.token_ids.length : 1;
      if (t?.shape.length !== 2 || t.shape[0] !== rows)
        throw modelError(
          "server",
          this.#ctx,
          `${where}: reply ${t ? `tensor "logits/${i}" has shape [${t.shape.join(", ")}]` : `lacks tensor "logits/${i}"`}, expected [${rows}, vocab]`,
        );
      return t;
    });
    return { logits, tokenCounts: counts.data };
  }

  /** The worker's tokenization of a chat (its template) or a text. */
  async tokenize(
    input: TokenizeInput,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ tokenIds: number[]; text: string }> {
    const call = TokenizeInputSchema.safeParse(input);
    if (!call.success) this.#invalid("tokenize", call.error);
    const reply = await this.#shared.conn.json("POST", "/v1/emlab/tokenize", {
      body: call.data,
      signal: opts.signal,
      schema: TokenizeReplySchema,
    });
    return { tokenIds: reply.token_ids, text: reply.text };
  }

  /** Closes the connection's kept-alive sockets (shared with withEdits views). */
  async close(): Promise<void> {
    this.#shared.conn.close();
  }

  /** For logs: never includes the key. */
  toString(): string {
    return redactSecrets(
      `HfWorkerModelApi(${this.model} at ${this.#shared.conn.baseUrl}${this.edits.length ? `, ${this.edits.length} edits` : ""})`,
      this.#ctx.secrets,
    );
  }
}

/** Factory for the registry: `registerProvider("hf-worker", createHfWorkerModelApi)`. */
export function createHfWorkerModelApi(
  settings: ProviderSettings,
  env: NodeJS.ProcessEnv = process.env,
): HfWorkerModelApi {
  return new HfWorkerModelApi(settings, env);
}
