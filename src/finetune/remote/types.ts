/**
 * What emlab needs from a provider's fine-tuning API, whoever it is: upload a training file,
 * create a job, find a file or job that a cut-off request made, poll the job, read its events
 * and checkpoints. One file per provider implements it (openai-jobs.ts, together-jobs.ts, worker-jobs.ts).
 */
import type { FinetunePlan, ModelEntry } from "../../config/schema.ts";
import type { ProviderSettings } from "../../models/types.ts";
import type { PreparedStage, RemoteBackend } from "../plan.ts";

export interface RemoteFile {
  id: string;
  filename: string;
  bytes: number;
}

/** A job's state in emlab's terms; `status` is the provider's own word. */
export interface RemoteJob {
  id: string;
  status: string;
  phase: "running" | "succeeded" | "failed";
  /** The fine-tuned model's name, once it has one. */
  model: string | null;
  trainedTokens: number | null;
  /** The provider's message for a failed or cancelled job. */
  error: string | null;
}

export interface RemoteEvent {
  id: string;
  /** Seconds since the epoch. */
  createdAt: number;
  level: string;
  message: string;
  /** From metrics events: the step and its training loss. */
  step?: number;
  trainLoss?: number;
}

export interface RemoteCheckpoint {
  model: string;
  step: number | null;
  trainLoss: number | null;
}

/** Where a stage starts: the plan's base model, or the job (and model) of the stage before. */
export interface StageStart {
  /** The provider's base model name (the root of the chain). */
  base: string;
  /** The previous stage's job and fine-tuned model, when this stage continues one. */
  previous?: { jobId: string; model: string };
}

export interface JobRequest {
  plan: FinetunePlan;
  /** Its position in the plan's `stages` (what the study declared there). */
  stageIndex: number;
  stage: PreparedStage;
  start: StageStart;
  trainingFile: string;
  /** emlab's tag of this submission: in the file name and (OpenAI) the job's metadata. */
  tag: string;
}

export interface RemoteFinetuneApi {
  readonly backend: RemoteBackend;
  uploadFile(bytes: Buffer, filename: string): Promise<RemoteFile>;
  /** An uploaded fine-tuning file of that name and size (a retried upload whose reply was lost). */
  findFile(filename: string, bytes: number): Promise<RemoteFile | undefined>;
  createJob(req: JobRequest): Promise<string>;
  /** The job an earlier createJob for this request made, when its reply never came. */
  findJob(req: JobRequest): Promise<string | undefined>;
  getJob(id: string): Promise<RemoteJob>;
  /** Events after `afterId` (all when undefined), oldest first. */
  events(id: string, afterId?: string): Promise<RemoteEvent[]>;
  checkpoints(id: string): Promise<RemoteCheckpoint[]>;
}

/** The provider settings of the study model a remote plan trains (its key variable, base URL, headers). */
export function rootSettings(root: ModelEntry): ProviderSettings {
  return {
    provider: root.provider,
    model: root.model,
    baseUrl: root.base_url,
    apiKeyEnv: root.api_key_env,
    headers: root.headers,
    options: root.options,
  };
}
