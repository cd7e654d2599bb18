/**
 * LoRA jobs on emlab's HF worker (docs/worker-protocol.md, "Training jobs"): the worker trains
 * the model it serves with PEFT, on this machine's or a GPU machine's accelerator, and then
 * serves the adapter as `NAME:ft:JOB_ID` beside its base (provider `hf-worker`).
 *
 * A job is identified by the protocol's `client_tag`, which is emlab's stage tag: creating a
 * job with a tag the worker knows returns that job, so a killed emlab finds its job again
 * (GET /v1/emlab/jobs?client_tag=) and never makes a second one. The worker takes the
 * examples inline in the job, not as an uploaded file; see `uploadFile`.
 */
import { z } from "zod";
import type { ModelEntry } from "../../config/schema.ts";
import { serializeChatJsonl } from "../../datasets/chat-jsonl.ts";
import {
  connectWorker,
  type WorkerConnection,
  type WorkerInfo,
  WorkerInfoSchema,
} from "../../models/hf-worker.ts";
import { ModelApiError } from "../../models/types.ts";
import { sha256 } from "../../runs/canonical.ts";
import { sleep } from "../../runs/limiter.ts";
import type { PreparedStage } from "../plan.ts";
import {
  type JobRequest,
  type RemoteCheckpoint,
  type RemoteEvent,
  type RemoteFile,
  type RemoteFinetuneApi,
  type RemoteJob,
  rootSettings,
} from "./types.ts";

/** The prefix of the training-file ids this client makes up: nothing is uploaded (see uploadFile). */
export const INLINE_FILE_PREFIX = "inline:";

const PHASE: Record<string, RemoteJob["phase"]> = {
  queued: "running",
  running: "running",
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "failed",
};

export const WorkerJobSchema = z.object({
  id: z.string(),
  client_tag: z.string(),
  status: z.string(),
  step: z.number().int(),
  total_steps: z.number().int().nullable(),
  losses: z.array(z.tuple([z.number().int(), z.number()])),
  error: z.string().nullable(),
  checkpoints: z.array(z.number().int()),
  fine_tuned_model: z.string().nullable(),
});
export type WorkerJob = z.infer<typeof WorkerJobSchema>;

/** The body of POST /v1/emlab/jobs (the protocol's field names). */
export interface WorkerJobBody {
  client_tag: string;
  examples: Array<{ messages: Array<{ role: string; content: string }> }>;
  lora: {
    r: number;
    alpha: number;
    dropout: number;
    target_modules: string[];
    use_rslora: boolean;
    layers: number[] | null;
  };
  training: {
    epochs: number;
    learning_rate: number;
    batch_size: number;
    max_steps: number | null;
    seed: number;
    max_length: number;
    weight_decay: number;
    warmup_steps: number;
  };
  [extra: string]: unknown;
}

/** The training-file id of a stage's data: its bytes' sha256 (what run-remote stores as file_sha256). */
export const inlineFileId = (bytes: Buffer | string) => `${INLINE_FILE_PREFIX}${sha256(bytes)}`;

/**
 * The job the worker is asked for, from the plan's LoRA block and the stage's resolved
 * settings. A stage's `steps` override its epochs, as in the local engine: the job gets enough
 * epochs to reach them and `max_steps` to stop there; fractional epochs are whole ones cut at
 * the stage's step count. Sequences are cut at the stage's `max_seq_len`, else at the
 * model's context (`maxPositions`), never beyond it. Weight decay is 0, as the local engine trains.
 */
export function workerJobBody(req: JobRequest, maxPositions: number): WorkerJobBody {
  const { plan, stage } = req;
  const lora = plan.lora;
  if (!lora)
    throw new Error(`fine-tune '${plan.id}': backend 'worker' trains LoRA adapters: the plan needs \`lora\``);
  const declared = plan.stages[req.stageIndex];
  const count = stage.conversations.length;
  const { epochs, maxSteps } = epochsAndSteps(stage, declared.steps, count);
  return {
    // More fields the plan asks for (e.g. checkpoint_every); emlab's own come after and win.
    ...(plan.provider_options ?? {}),
    client_tag: req.tag,
    examples: stage.conversations.map((c) => ({
      messages: c.map((m) => ({ role: m.role, content: m.content })),
    })),
    lora: {
      r: lora.rank,
      alpha: lora.alpha,
      dropout: lora.dropout,
      target_modules: [...lora.target_modules],
      use_rslora: lora.rslora,
      layers: lora.layers ? [...lora.layers] : null,
    },
    training: {
      epochs,
      learning_rate: stage.learningRate,
      batch_size: stage.batchSize,
      max_steps: maxSteps,
      seed: stage.seed,
      max_length: Math.min(declared.max_seq_len ?? maxPositions, maxPositions),
      weight_decay: 0,
      warmup_steps: stage.warmupSteps,
    },
  };
}

function epochsAndSteps(
  stage: PreparedStage,
  declaredSteps: number | undefined,
  count: number,
): { epochs: number; maxSteps: number | null } {
  if (declaredSteps !== undefined)
    return {
      epochs: Math.max(1, Math.ceil((declaredSteps * stage.batchSize) / Math.max(1, count))),
      maxSteps: declaredSteps,
    };
  if (Number.isInteger(stage.epochs)) return { epochs: stage.epochs, maxSteps: null };
  return { epochs: Math.ceil(stage.epochs), maxSteps: stage.steps };
}

export class WorkerFinetuneApi implements RemoteFinetuneApi {
  readonly backend = "worker" as const;
  /** The provider's connection (auth, headers, the protocol's errors as ModelApiErrors, secrets scrubbed). */
  readonly #conn: WorkerConnection;
  readonly #retries: number;
  readonly #root: ModelEntry;
  #info: WorkerInfo | undefined;

  constructor(root: ModelEntry, env: NodeJS.ProcessEnv) {
    this.#conn = connectWorker(rootSettings(root), env, root.limits.timeout_s * 1000);
    this.#retries = root.limits.max_retries;
    this.#root = root;
  }

  /**
   * One call, retried when the failure is transient (5xx, a lost connection, a timeout). A
   * creation is safe to retry too: the worker returns the job it already has for the tag.
   */
  async #call<T>(method: "GET" | "POST", route: string, schema: z.ZodType<T>, body?: object): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#conn.json(method, route, { schema, ...(body ? { body } : {}) });
      } catch (e) {
        if (e instanceof ModelApiError && e.retryable && attempt < this.#retries) {
          await sleep(e.retryAfterMs ?? backoff(attempt));
          continue;
        }
        throw e;
      }
    }
  }

  /** Closes the connection's kept-alive sockets. */
  close(): void {
    this.#conn.close();
  }

  /** The worker's model and context, checked once: it must serve the plan's base model and train. */
  async #checkedInfo(base: string): Promise<WorkerInfo> {
    this.#info ??= await this.#call("GET", "/v1/emlab/info", WorkerInfoSchema);
    const info = this.#info;
    if (info.model !== base)
      throw new Error(
        `worker ${this.#conn.baseUrl} serves '${info.model}', but model '${this.#root.id}' names '${base}': start the worker with --served-name ${base}, or set the model entry's \`model\` to '${info.model}'`,
      );
    if (!info.capabilities.includes("finetune"))
      throw new Error(
        `worker ${this.#conn.baseUrl} does not train (its capabilities: ${info.capabilities.join(", ")})`,
      );
    return info;
  }

  /**
   * Nothing is uploaded: the worker takes the examples inline in the job (createJob sends
   * the stage's conversations). The runner's upload step is kept so the worker's stages are
   * stored as every remote backend's are; the "file" id is the data's sha256, so a stored
   * stage names exactly the data its job was made from.
   */
  async uploadFile(bytes: Buffer, filename: string): Promise<RemoteFile> {
    return { id: inlineFileId(bytes), filename, bytes: bytes.length };
  }

  /** No file was ever sent, so none is found: the runner "uploads" (makes the id) at once. */
  async findFile(): Promise<RemoteFile | undefined> {
    return undefined;
  }

  async createJob(req: JobRequest): Promise<string> {
    if (req.start.previous)
      // The schema refuses these plans; a stored plan from elsewhere must not train the wrong start.
      throw new Error(
        `fine-tune '${req.plan.id}': the worker's jobs start from its served model; continuing job ${req.start.previous.jobId} is not in its protocol`,
      );
    const expected = inlineFileId(serializeChatJsonl(req.stage.conversations));
    if (req.trainingFile !== expected)
      throw new Error(
        `fine-tune '${req.plan.id}' stage ${req.stageIndex + 1}: the stored training data (${req.trainingFile}) is not the stage's data (${expected})`,
      );
    const info = await this.#checkedInfo(req.start.base);
    const job = await this.#call(
      "POST",
      "/v1/emlab/jobs",
      WorkerJobSchema,
      workerJobBody(req, info.max_positions),
    );
    if (job.client_tag !== req.tag)
      throw new Error(
        `worker ${this.#conn.baseUrl}: job ${job.id} came back with tag '${job.client_tag}', not '${req.tag}'`,
      );
    return job.id;
  }

  async findJob(req: JobRequest): Promise<string | undefined> {
    const list = await this.#call(
      "GET",
      `/v1/emlab/jobs?client_tag=${encodeURIComponent(req.tag)}`,
      z.object({ data: z.array(WorkerJobSchema) }),
    );
    return list.data.find((j) => j.client_tag === req.tag)?.id;
  }

  /** The worker's job as it reports it. */
  async job(id: string): Promise<WorkerJob> {
    return this.#call("GET", `/v1/emlab/jobs/${encodeURIComponent(id)}`, WorkerJobSchema);
  }

  async getJob(id: string): Promise<RemoteJob> {
    const job = await this.job(id);
    const phase = PHASE[job.status] ?? "running";
    return {
      id: job.id,
      status: job.status,
      phase,
      model: job.fine_tuned_model,
      // The worker counts steps, not tokens.
      trainedTokens: null,
      error:
        phase === "failed"
          ? (job.error ?? (job.status === "cancelled" ? "the job was cancelled" : `status ${job.status}`))
          : null,
    };
  }

  /** One event per training step the worker reports a loss for; the step is the event's id. */
  async events(id: string, afterId?: string): Promise<RemoteEvent[]> {
    const job = await this.job(id);
    const after = afterId === undefined ? -1 : Number(afterId);
    return job.losses
      .filter(([step]) => step > after)
      .sort((a, b) => a[0] - b[0])
      .map(([step, loss]) => ({
        id: `${step}`,
        // The worker keeps no time per step: this is when it was read.
        createdAt: Date.now() / 1000,
        level: "info",
        message: `step ${step}/${job.total_steps ?? "?"} loss ${loss.toFixed(4)}`,
        step,
        trainLoss: loss,
      }));
  }

  /** The job's checkpoints: resume points in the worker's state directory (not served models). */
  async checkpoints(id: string): Promise<RemoteCheckpoint[]> {
    const job = await this.job(id);
    const lossAt = new Map(job.losses.map(([s, l]) => [s, l]));
    return [...job.checkpoints]
      .sort((a, b) => a - b)
      .map((step) => ({ model: `jobs/${id}/checkpoint-${step}`, step, trainLoss: lossAt.get(step) ?? null }));
  }

  /** The trained adapter's files (PEFT's layout), once the job succeeded. */
  async adapterFiles(id: string): Promise<Record<string, Buffer>> {
    const r = await this.#call(
      "GET",
      `/v1/emlab/jobs/${encodeURIComponent(id)}/adapter`,
      z.object({ files: z.record(z.string(), z.string()) }),
    );
    return Object.fromEntries(
      Object.entries(r.files).map(([name, b64]) => [name, Buffer.from(b64, "base64")]),
    );
  }
}

const backoff = (attempt: number) => Math.min(10_000, 250 * 2 ** attempt);
