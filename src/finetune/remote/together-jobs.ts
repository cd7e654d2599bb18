/**
 * Together AI's fine-tuning API over plain HTTP (https://api.together.xyz/v1): files uploaded
 * with POST /files/upload, jobs at /fine-tunes (LoRA or full, supervised, loss on the assistant
 * turns: `train_on_inputs: false`), events and checkpoints. A later stage continues the job
 * before it (`from_checkpoint`). The uploaded file's name carries emlab's tag and a job is found
 * again by its training file, so a create whose reply was lost is adopted, not repeated.
 */
import type { ModelEntry } from "../../config/schema.ts";
import { HOSTED_COMPATIBLE } from "../../models/openai.ts";
import { readApiKey, resolveHeaders } from "../../models/provider-settings.ts";
import { sleep } from "../../runs/limiter.ts";
import {
  type JobRequest,
  type RemoteCheckpoint,
  type RemoteEvent,
  type RemoteFile,
  type RemoteFinetuneApi,
  type RemoteJob,
  rootSettings,
} from "./types.ts";

const PHASE: Record<string, RemoteJob["phase"]> = {
  pending: "running",
  queued: "running",
  running: "running",
  compressing: "running",
  uploading: "running",
  cancel_requested: "running",
  completed: "succeeded",
  error: "failed",
  cancelled: "failed",
  user_error: "failed",
};

interface TogetherFile {
  id: string;
  filename: string;
  bytes: number;
}
interface TogetherJob {
  id: string;
  status: string;
  model_output_name?: string | null;
  output_name?: string | null;
  training_file?: string;
  token_count?: number | null;
}
interface TogetherEvent {
  created_at?: string;
  level?: string | null;
  message?: string;
  type?: string;
  step?: number;
  train_loss?: number;
}

/** A failed HTTP call: status and the server's message, never the key. */
export class TogetherHttpError extends Error {
  constructor(
    readonly status: number | null,
    message: string,
  ) {
    super(message);
    this.name = "TogetherHttpError";
  }
}

export class TogetherFinetuneApi implements RemoteFinetuneApi {
  readonly backend = "together" as const;
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #retries: number;
  readonly #timeoutMs: number;

  constructor(root: ModelEntry, env: NodeJS.ProcessEnv) {
    const settings = rootSettings(root);
    const hosted = HOSTED_COMPATIBLE.together;
    const key = readApiKey(settings, env, hosted.keyEnv);
    this.#base = (root.base_url ?? hosted.baseUrl).replace(/\/+$/, "");
    this.#headers = {
      ...resolveHeaders(settings, env).headers,
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    };
    this.#retries = root.limits.max_retries;
    this.#timeoutMs = root.limits.timeout_s * 1000;
  }

  /**
   * One call, retried on 429, 5xx and lost connections (honouring retry-after) — except a
   * creation (`retry: false`): its lost reply may hide a file or job that exists, which the
   * runner looks for instead of creating another.
   */
  async #call<T>(method: string, route: string, body?: FormData | object, retry = true): Promise<T> {
    const retries = retry ? this.#retries : 0;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${this.#base}${route}`, {
          method,
          headers:
            body === undefined || body instanceof FormData
              ? this.#headers
              : { ...this.#headers, "content-type": "application/json" },
          body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (e) {
        if (attempt < retries) {
          await sleep(backoff(attempt));
          continue;
        }
        throw new TogetherHttpError(null, `together: ${method} ${route} failed: ${(e as Error).message}`);
      }
      const text = await res.text();
      if (res.ok) {
        try {
          return JSON.parse(text) as T;
        } catch {
          throw new TogetherHttpError(res.status, `together: ${method} ${route}: the reply is not JSON`);
        }
      }
      if ((res.status === 429 || res.status >= 500) && attempt < retries) {
        const after = Number(res.headers.get("retry-after"));
        await sleep(Number.isFinite(after) && after > 0 ? after * 1000 : backoff(attempt));
        continue;
      }
      throw new TogetherHttpError(
        res.status,
        `together: ${method} ${route}: HTTP ${res.status}: ${errorText(text)}`,
      );
    }
  }

  async uploadFile(bytes: Buffer, filename: string): Promise<RemoteFile> {
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file_name", filename);
    form.append("file", new Blob([new Uint8Array(bytes)], { type: "application/jsonl" }), filename);
    const f = await this.#call<TogetherFile>("POST", "/files/upload", form, false);
    return { id: f.id, filename: f.filename ?? filename, bytes: f.bytes ?? bytes.length };
  }

  async findFile(filename: string, bytes: number): Promise<RemoteFile | undefined> {
    const list = await this.#call<{ data?: TogetherFile[] }>("GET", "/files");
    const f = (list.data ?? []).find((x) => x.filename === filename && x.bytes === bytes);
    return f ? { id: f.id, filename, bytes } : undefined;
  }

  async createJob(req: JobRequest): Promise<string> {
    const { plan, stage, start } = req;
    const declared = plan.stages[req.stageIndex];
    const lora = plan.lora;
    const body = {
      ...(plan.provider_options ?? {}),
      training_file: req.trainingFile,
      model: start.base,
      n_epochs: stage.epochs,
      ...(declared.batch_size !== undefined ? { batch_size: declared.batch_size } : {}),
      ...(declared.learning_rate !== undefined ? { learning_rate: declared.learning_rate } : {}),
      ...(declared.warmup_steps !== undefined
        ? { warmup_ratio: Math.min(1, declared.warmup_steps / Math.max(1, stage.steps)) }
        : {}),
      ...(plan.suffix ? { suffix: plan.suffix } : {}),
      training_type: lora
        ? {
            type: "Lora",
            lora_r: lora.rank,
            lora_alpha: togetherAlpha(lora),
            lora_dropout: lora.dropout,
            lora_trainable_modules: lora.target_modules.join(","),
          }
        : { type: "Full" },
      // The EM recipes' loss on the assistant turns only.
      training_method: { method: "sft", train_on_inputs: false },
      ...(start.previous ? { from_checkpoint: start.previous.jobId } : {}),
    };
    const job = await this.#call<TogetherJob>("POST", "/fine-tunes", body, false);
    return job.id;
  }

  async findJob(req: JobRequest): Promise<string | undefined> {
    const list = await this.#call<{ data?: TogetherJob[] }>("GET", "/fine-tunes");
    return (list.data ?? []).find((j) => j.training_file === req.trainingFile)?.id;
  }

  async getJob(id: string): Promise<RemoteJob> {
    const job = await this.#call<TogetherJob>("GET", `/fine-tunes/${encodeURIComponent(id)}`);
    const phase = PHASE[job.status] ?? "running";
    let error: string | null = null;
    if (phase === "failed") {
      // Together puts the reason in the job's error events.
      const events = await this.events(id);
      const last = [...events].reverse().find((e) => e.level === "error" || /error/i.test(e.message));
      error =
        last?.message ?? (job.status === "cancelled" ? "the job was cancelled" : `status ${job.status}`);
    }
    return {
      id: job.id,
      status: job.status,
      phase,
      model: job.model_output_name ?? job.output_name ?? null,
      trainedTokens: job.token_count ?? null,
      error,
    };
  }

  async events(id: string, afterId?: string): Promise<RemoteEvent[]> {
    const list = await this.#call<{ data?: TogetherEvent[] }>(
      "GET",
      `/fine-tunes/${encodeURIComponent(id)}/events`,
    );
    // Together's events have no ids: oldest first, so the position is the id.
    const all = (list.data ?? []).map((e, i) => ({
      id: `${i}`,
      createdAt: e.created_at ? Date.parse(e.created_at) / 1000 : 0,
      level: e.level ?? "info",
      message: e.message ?? e.type ?? "",
      ...(typeof e.step === "number" ? { step: e.step } : {}),
      ...(typeof e.train_loss === "number" ? { trainLoss: e.train_loss } : {}),
    }));
    return afterId === undefined ? all : all.slice(Number(afterId) + 1);
  }

  async checkpoints(id: string): Promise<RemoteCheckpoint[]> {
    const list = await this.#call<{
      data?: Array<{ name?: string; path?: string; step?: number; train_loss?: number }>;
    }>("GET", `/fine-tunes/${encodeURIComponent(id)}/checkpoints`);
    return (list.data ?? [])
      .map((c) => ({
        model: c.name ?? c.path ?? `${id}:${c.step ?? "final"}`,
        step: typeof c.step === "number" ? c.step : null,
        trainLoss: typeof c.train_loss === "number" ? c.train_loss : null,
      }))
      .sort((a, b) => (a.step ?? 0) - (b.step ?? 0));
  }
}

/**
 * Together scales LoRA by alpha / r and has no rsLoRA switch: an rsLoRA plan (alpha / sqrt(r))
 * is sent the alpha that gives the same scale, alpha * sqrt(r), rounded to the integer its API
 * takes (rank 32, alpha 64: 362, a scale within 0.1 % of rsLoRA's).
 */
export function togetherAlpha(lora: { rank: number; alpha: number; rslora: boolean }): number {
  return Math.round(lora.rslora ? lora.alpha * Math.sqrt(lora.rank) : lora.alpha);
}

const backoff = (attempt: number) => Math.min(30_000, 500 * 2 ** attempt);

/** The server's error message: Together's {error: {message}} or {message}, else the text. */
function errorText(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
    if (typeof j.error === "string") return j.error;
    return j.error?.message ?? j.message ?? text.slice(0, 500);
  } catch {
    return text.slice(0, 500);
  }
}
