/**
 * OpenAI's fine-tuning API through the official SDK: files (purpose "fine-tune"), jobs with the
 * supervised method, events, checkpoints. A job carries emlab's submission tag in its metadata,
 * so a create whose reply was lost is found again by listing jobs with that tag.
 *
 * OpenAI has said it stops accepting new fine-tuning jobs on 2027-01-06 (docs/finetune.md);
 * until then this backend creates them, and afterwards it can still poll and use finished ones.
 */
import { OpenAI, toFile } from "openai";
import type { ModelEntry } from "../../config/schema.ts";
import { readApiKey, resolveHeaders } from "../../models/provider-settings.ts";
import {
  type JobRequest,
  type RemoteCheckpoint,
  type RemoteEvent,
  type RemoteFile,
  type RemoteFinetuneApi,
  type RemoteJob,
  rootSettings,
} from "./types.ts";

const OFFICIAL_BASE_URL = "https://api.openai.com/v1";
/** The metadata keys emlab sets on its jobs. */
export const TAG_KEY = "emlab_tag";
const PLAN_KEY = "emlab_plan";

const PHASE: Record<string, RemoteJob["phase"]> = {
  validating_files: "running",
  queued: "running",
  running: "running",
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "failed",
};

export class OpenAIFinetuneApi implements RemoteFinetuneApi {
  readonly backend = "openai" as const;
  readonly #client: OpenAI;

  constructor(root: ModelEntry, env: NodeJS.ProcessEnv) {
    const settings = rootSettings(root);
    const apiKey = readApiKey(settings, env, "OPENAI_API_KEY");
    const extra = resolveHeaders(settings, env);
    this.#client = new OpenAI({
      apiKey: apiKey ?? "no-auth",
      adminAPIKey: null,
      organization: null,
      project: null,
      baseURL: root.base_url ?? OFFICIAL_BASE_URL,
      // Retries of a failed call are the SDK's (with its backoff): these calls are few.
      maxRetries: root.limits.max_retries,
      timeout: root.limits.timeout_s * 1000,
      defaultHeaders: extra.headers,
    });
  }

  async uploadFile(bytes: Buffer, filename: string): Promise<RemoteFile> {
    // Never retried blindly: a lost reply may hide a file that exists (the runner looks for it).
    const f = await this.#client.files.create(
      { file: await toFile(bytes, filename, { type: "application/jsonl" }), purpose: "fine-tune" },
      { maxRetries: 0 },
    );
    return { id: f.id, filename: f.filename, bytes: f.bytes };
  }

  async findFile(filename: string, bytes: number): Promise<RemoteFile | undefined> {
    for await (const f of this.#client.files.list({ purpose: "fine-tune" }))
      if (f.filename === filename && f.bytes === bytes) return { id: f.id, filename, bytes };
    return undefined;
  }

  async createJob(req: JobRequest): Promise<string> {
    const { plan, stage, start } = req;
    // What the study leaves out is the provider's "auto".
    const declared = plan.stages[req.stageIndex];
    const hyperparameters = {
      n_epochs: stage.epochs,
      ...(declared.batch_size !== undefined ? { batch_size: declared.batch_size } : {}),
      ...(stage.learningRateMultiplier !== undefined
        ? { learning_rate_multiplier: stage.learningRateMultiplier }
        : {}),
    };
    // Never retried blindly: a lost reply may hide a job that exists (the runner looks for it by tag).
    const job = await this.#client.fineTuning.jobs.create(
      {
        ...(plan.provider_options ?? {}),
        // A later stage fine-tunes the model the stage before made.
        model: start.previous?.model ?? start.base,
        training_file: req.trainingFile,
        seed: stage.seed,
        ...(plan.suffix ? { suffix: plan.suffix } : {}),
        metadata: { [TAG_KEY]: req.tag, [PLAN_KEY]: plan.id },
        method: { type: "supervised", supervised: { hyperparameters } },
      },
      { maxRetries: 0 },
    );
    return job.id;
  }

  async findJob(req: JobRequest): Promise<string | undefined> {
    for await (const job of this.#client.fineTuning.jobs.list({ metadata: { [TAG_KEY]: req.tag } }))
      if (job.metadata?.[TAG_KEY] === req.tag && job.training_file === req.trainingFile) return job.id;
    return undefined;
  }

  async getJob(id: string): Promise<RemoteJob> {
    const job = await this.#client.fineTuning.jobs.retrieve(id);
    const phase = PHASE[job.status] ?? "running";
    const error = job.error
      ? `${job.error.message}${job.error.code ? ` (code ${job.error.code})` : ""}`
      : job.status === "cancelled"
        ? "the job was cancelled"
        : null;
    return {
      id: job.id,
      status: job.status,
      phase,
      model: job.fine_tuned_model ?? null,
      trainedTokens: job.trained_tokens ?? null,
      error: phase === "failed" ? (error ?? `status ${job.status}`) : null,
    };
  }

  async events(id: string, afterId?: string): Promise<RemoteEvent[]> {
    // The list is newest first: read back to the last event seen, then put them in order.
    const out: RemoteEvent[] = [];
    for await (const e of this.#client.fineTuning.jobs.listEvents(id, { limit: 100 })) {
      if (e.id === afterId) break;
      const data = (e.data ?? {}) as { step?: unknown; train_loss?: unknown };
      out.push({
        id: e.id,
        createdAt: e.created_at,
        level: e.level,
        message: e.message,
        ...(e.type === "metrics" && typeof data.step === "number" ? { step: data.step } : {}),
        ...(e.type === "metrics" && typeof data.train_loss === "number"
          ? { trainLoss: data.train_loss }
          : {}),
      });
    }
    return out.reverse();
  }

  async checkpoints(id: string): Promise<RemoteCheckpoint[]> {
    const out: RemoteCheckpoint[] = [];
    for await (const c of this.#client.fineTuning.jobs.checkpoints.list(id))
      out.push({
        model: c.fine_tuned_model_checkpoint,
        step: c.step_number ?? null,
        trainLoss: typeof c.metrics?.train_loss === "number" ? c.metrics.train_loss : null,
      });
    return out.sort((a, b) => (a.step ?? 0) - (b.step ?? 0));
  }
}
