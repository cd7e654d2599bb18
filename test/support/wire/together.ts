// Together AI's files upload and fine-tuning API (https://api.together.xyz/v1 shape): a JSONL
// file is checked when uploaded; a job moves pending → queued → running → completed | error |
// cancelled as it is polled, with Together's event objects, checkpoints and output model name.
// Errors use Together's envelope, `{error: {message, type, param, code}}` (its ErrorData).

import {
  type FinetuneFailure,
  type Incoming,
  isObject,
  type Reply,
  type ServerState,
  type StoredFile,
} from "./context.ts";
import { fileObject } from "./openai-batches.ts";
import { openaiError } from "./openai-chat.ts";
import { hexOf } from "./random.ts";
import { checkTogetherTrainingFile } from "./training-data.ts";

/** The account prefix of output model names (`<account>/<base>-<suffix>-<8 hex>`). */
export const TOGETHER_ACCOUNT = "wire-test";

const FILE_PURPOSES = [
  "fine-tune",
  "eval",
  "eval-sample",
  "eval-output",
  "eval-summary",
  "batch-generated",
  "batch-api",
];
const FILE_TYPES = ["jsonl", "csv", "parquet"];

/** Together's error envelope is OpenAI's: `{error: {message, type, param, code}}`. */
const togetherError = (
  status: number,
  message: string,
  param: string | null = null,
  code: string | null = null,
) => openaiError(status, message, "invalid_request_error", param, code);

/** A deterministic UUID (v4 layout) from a key. */
function uuidOf(key: string): string {
  const h = hexOf(key, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const iso = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString();

type Status = "pending" | "queued" | "running" | "cancel_requested" | "cancelled" | "error" | "completed";
const TERMINAL: Status[] = ["cancelled", "error", "completed"];

interface TogetherEvent {
  object: "fine-tune-event";
  created_at: string;
  level: "info" | "warning" | "error";
  message: string;
  type: string;
  param_count: number;
  token_count: number;
  total_steps: number;
  wandb_url: string;
  step: number;
  checkpoint_path: string;
  model_path: string;
  training_offset: number;
  hash: string;
}

type TrainingType =
  | { type: "Lora"; lora_r: number; lora_alpha: number; lora_dropout: number; lora_trainable_modules: string }
  | { type: "Full" };

interface Job {
  id: string;
  model: string;
  outputName: string;
  trainingFile: string;
  validationFile: string | null;
  suffix: string | null;
  nEpochs: number;
  nCheckpoints: number;
  nEvals: number;
  batchSize: number;
  learningRate: number;
  warmupRatio: number;
  maxGradNorm: number;
  weightDecay: number;
  trainingType: TrainingType;
  trainingMethod: { method: "sft"; train_on_inputs: boolean | "auto" };
  fromCheckpoint: string | null;
  randomSeed: number | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  status: Status;
  runningPolls: number;
  events: TogetherEvent[];
  checkpoints: Array<{ step: number; path: string; created_at: string; checkpoint_type: string }>;
  failure: FinetuneFailure | null;
  lines: number;
  bytes: number;
  tokens: number;
  totalSteps: number;
  stepsDone: number;
}

function numberField(
  body: Record<string, unknown>,
  name: string,
  fallback: number,
  check: (v: number) => boolean,
  rule: string,
): number {
  const v = body[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || !check(v)) {
    throw togetherError(
      400,
      `Invalid value for ${name}: ${JSON.stringify(v)}. ${name} must be ${rule}.`,
      name,
    );
  }
  return v;
}

function parseTrainingType(v: unknown): TrainingType {
  const lora = {
    type: "Lora" as const,
    lora_r: 8,
    lora_alpha: 16,
    lora_dropout: 0,
    lora_trainable_modules: "all-linear",
  };
  if (v === undefined || v === null) return lora; // the API's default is LoRA
  if (!isObject(v) || (v.type !== "Lora" && v.type !== "Full")) {
    throw togetherError(400, `Invalid training_type: type must be 'Lora' or 'Full'.`, "training_type");
  }
  if (v.type === "Full") return { type: "Full" };
  for (const k of ["lora_r", "lora_alpha"]) {
    if (!Number.isInteger(v[k]) || (v[k] as number) < 1) {
      throw togetherError(
        400,
        `Invalid training_type: ${k} is required and must be a positive integer.`,
        `training_type.${k}`,
      );
    }
  }
  const dropout = v.lora_dropout ?? 0;
  if (typeof dropout !== "number" || dropout < 0 || dropout >= 1) {
    throw togetherError(
      400,
      "Invalid training_type: lora_dropout must be in [0, 1).",
      "training_type.lora_dropout",
    );
  }
  const modules = v.lora_trainable_modules ?? "all-linear";
  if (typeof modules !== "string") {
    throw togetherError(
      400,
      "Invalid training_type: lora_trainable_modules must be a string.",
      "training_type.lora_trainable_modules",
    );
  }
  return {
    type: "Lora",
    lora_r: v.lora_r as number,
    lora_alpha: v.lora_alpha as number,
    lora_dropout: dropout,
    lora_trainable_modules: modules,
  };
}

export class TogetherFineTuning {
  private jobs = new Map<string, Job>();

  constructor(private state: ServerState) {}

  /** POST /v1/files/upload (multipart: file, file_name, purpose, file_type?); checks fine-tune JSONL. */
  async upload(inc: Incoming): Promise<Reply> {
    if (!inc.form) {
      throw togetherError(400, "Expected a multipart/form-data body with 'file', 'file_name' and 'purpose'.");
    }
    const file = inc.form.get("file");
    const fileName = inc.form.get("file_name");
    const purpose = inc.form.get("purpose");
    const fileType = inc.form.get("file_type") ?? "jsonl";
    if (!(file instanceof Blob)) throw togetherError(400, "Missing required field: file", "file");
    if (typeof fileName !== "string" || fileName === "") {
      throw togetherError(400, "Missing required field: file_name", "file_name");
    }
    if (typeof purpose !== "string" || !FILE_PURPOSES.includes(purpose)) {
      throw togetherError(
        400,
        `Invalid purpose '${String(purpose)}'. Must be one of: ${FILE_PURPOSES.join(", ")}`,
        "purpose",
      );
    }
    if (typeof fileType !== "string" || !FILE_TYPES.includes(fileType)) {
      throw togetherError(
        400,
        `Invalid file_type '${String(fileType)}'. Must be one of: ${FILE_TYPES.join(", ")}`,
        "file_type",
      );
    }
    const bytes = Buffer.from(await file.arrayBuffer());
    if (purpose === "fine-tune" && fileType === "jsonl") {
      const checked = checkTogetherTrainingFile(bytes.toString("utf8"));
      if ("problem" in checked)
        throw togetherError(400, checked.problem.message, "file", "invalid_file_format");
    }
    const f: StoredFile = {
      id: `file-${uuidOf(`file:${this.state.newId("", 16)}`)}`,
      filename: fileName,
      purpose,
      bytes,
      createdAt: this.state.now(),
    };
    this.state.files.set(f.id, f);
    return { status: 200, body: fileObject(f) };
  }

  private job(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw togetherError(404, `Fine-tune job not found: ${id}`, "id", "not_found");
    return job;
  }

  /** `from_checkpoint`: `<job id | output name>[:<step>]` of a completed job this server ran. */
  private resolveCheckpoint(ref: string): Job {
    const m = /^(.*):(\d+)$/.exec(ref);
    const name = m ? m[1] : ref;
    const source = [...this.jobs.values()].find((j) => j.id === name || j.outputName === name);
    if (source?.status !== "completed") {
      throw togetherError(
        400,
        `Checkpoint ${ref} not found: it must name a completed fine-tuning job or its output model.`,
        "from_checkpoint",
      );
    }
    if (m && !source.checkpoints.some((c) => c.step === Number(m[2]))) {
      throw togetherError(
        400,
        `Checkpoint ${ref} not found: job ${source.id} has no checkpoint at step ${m[2]}.`,
        "from_checkpoint",
      );
    }
    return source;
  }

  create(inc: Incoming, baseModels: string[]): Reply {
    const body = inc.json;
    if (!isObject(body)) throw togetherError(400, "Request body must be a JSON object.");
    if (typeof body.training_file !== "string") {
      throw togetherError(400, "Missing required field: training_file", "training_file");
    }
    const training = this.state.files.get(body.training_file);
    if (training?.purpose !== "fine-tune") {
      throw togetherError(
        400,
        training
          ? `File ${body.training_file} has purpose '${training.purpose}', not 'fine-tune'.`
          : `Training file ${body.training_file} not found.`,
        "training_file",
      );
    }
    let validation: StoredFile | null = null;
    if (body.validation_file !== undefined && body.validation_file !== null) {
      validation =
        typeof body.validation_file === "string"
          ? (this.state.files.get(body.validation_file) ?? null)
          : null;
      if (!validation)
        throw togetherError(
          400,
          `Validation file ${String(body.validation_file)} not found.`,
          "validation_file",
        );
    }
    let model: string;
    let fromCheckpoint: string | null = null;
    if (body.from_checkpoint !== undefined && body.from_checkpoint !== null) {
      if (typeof body.from_checkpoint !== "string")
        throw togetherError(400, "from_checkpoint must be a string.", "from_checkpoint");
      const source = this.resolveCheckpoint(body.from_checkpoint);
      if (typeof body.model === "string" && body.model !== source.model) {
        throw togetherError(
          400,
          `model ${body.model} does not match the base model of checkpoint ${body.from_checkpoint} (${source.model}).`,
          "model",
        );
      }
      model = source.model;
      fromCheckpoint = body.from_checkpoint;
    } else {
      if (typeof body.model !== "string") throw togetherError(400, "Missing required field: model", "model");
      if (!baseModels.includes(body.model)) {
        throw togetherError(
          400,
          `Model ${body.model} is not supported for fine-tuning.`,
          "model",
          "model_not_available",
        );
      }
      model = body.model;
    }
    const int = (v: number) => Number.isInteger(v);
    const nEpochs = numberField(
      body,
      "n_epochs",
      1,
      (v) => int(v) && v >= 1 && v <= 20,
      "an integer between 1 and 20",
    );
    const nCheckpoints = numberField(body, "n_checkpoints", 1, (v) => int(v) && v >= 1, "a positive integer");
    const nEvals = numberField(body, "n_evals", 0, (v) => int(v) && v >= 0, "a non-negative integer");
    const batchSize =
      body.batch_size === "max"
        ? 8
        : numberField(body, "batch_size", 8, (v) => int(v) && v >= 1, "a positive integer or 'max'");
    const learningRate = numberField(
      body,
      "learning_rate",
      0.00001,
      (v) => v > 0 && v <= 1,
      "a number in (0, 1]",
    );
    const warmupRatio = numberField(body, "warmup_ratio", 0, (v) => v >= 0 && v <= 1, "a number in [0, 1]");
    const maxGradNorm = numberField(body, "max_grad_norm", 1, (v) => v >= 0, "a non-negative number");
    const weightDecay = numberField(body, "weight_decay", 0, (v) => v >= 0, "a non-negative number");
    let suffix: string | null = null;
    if (body.suffix !== undefined && body.suffix !== null) {
      if (typeof body.suffix !== "string" || body.suffix.length > 40) {
        throw togetherError(400, "suffix must be a string of at most 40 characters.", "suffix");
      }
      suffix = body.suffix;
    }
    const trainingType = parseTrainingType(body.training_type);
    let trainOnInputs: boolean | "auto" = "auto";
    const method = body.training_method;
    if (method !== undefined && method !== null) {
      if (!isObject(method) || (method.method !== "sft" && method.method !== "dpo")) {
        throw togetherError(400, "training_method.method must be 'sft' or 'dpo'.", "training_method");
      }
      if (method.method === "dpo")
        throw togetherError(
          400,
          "wire-server: only sft training is implemented, not dpo.",
          "training_method",
        );
      trainOnInputs = (method.train_on_inputs as boolean | "auto" | undefined) ?? "auto";
    } else if (body.train_on_inputs !== undefined) {
      trainOnInputs = body.train_on_inputs as boolean | "auto"; // deprecated top-level field
    }
    if (trainOnInputs !== "auto" && typeof trainOnInputs !== "boolean") {
      throw togetherError(
        400,
        "train_on_inputs must be a boolean or 'auto'.",
        "training_method.train_on_inputs",
      );
    }
    const id = `ft-${uuidOf(`job:${this.state.newId("", 16)}`)}`;
    const base = model.split("/").at(-1) ?? model;
    const text = training.bytes.toString("utf8");
    const checked = checkTogetherTrainingFile(text);
    const now = this.state.now();
    const job: Job = {
      id,
      model,
      outputName: `${TOGETHER_ACCOUNT}/${base}${suffix ? `-${suffix}` : ""}-${hexOf(`${id}:output`, 8)}`,
      trainingFile: training.id,
      validationFile: validation?.id ?? null,
      suffix,
      nEpochs,
      nCheckpoints,
      nEvals,
      batchSize,
      learningRate,
      warmupRatio,
      maxGradNorm,
      weightDecay,
      trainingType,
      trainingMethod: { method: "sft", train_on_inputs: trainOnInputs },
      fromCheckpoint,
      randomSeed: Number.isInteger(body.random_seed) ? (body.random_seed as number) : null,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      status: "pending",
      runningPolls: 0,
      events: [],
      checkpoints: [],
      failure: this.state.finetuneFailures.shift() ?? null,
      lines: "stats" in checked ? checked.stats.examples : 0,
      bytes: training.bytes.length,
      tokens: "stats" in checked ? checked.stats.tokens : 0,
      totalSteps: 0,
      stepsDone: 0,
    };
    job.totalSteps = Math.max(1, Math.ceil(job.lines / batchSize)) * nEpochs;
    this.jobs.set(id, job);
    this.event(job, "JOB_PENDING", "Fine tune request created");
    return { status: 200, body: this.view(job, false) };
  }

  private event(
    job: Job,
    type: string,
    message: string,
    level: TogetherEvent["level"] = "info",
    extra: Partial<TogetherEvent> = {},
  ): void {
    job.updatedAt = this.state.now();
    job.events.push({
      object: "fine-tune-event",
      created_at: iso(job.updatedAt),
      level,
      message,
      type,
      param_count: 0,
      token_count: 0,
      total_steps: job.totalSteps,
      wandb_url: "",
      step: job.stepsDone,
      checkpoint_path: "",
      model_path: "",
      training_offset: 0,
      hash: hexOf(`${job.id}:event:${job.events.length}`, 32),
      ...extra,
    });
  }

  private fail(job: Job, message: string): void {
    job.status = "error";
    this.event(job, "JOB_ERROR", message, "error");
  }

  /** One running poll: steps up to this poll's share, with epoch and checkpoint events. */
  private advance(job: Job): void {
    const target = Math.floor((job.totalSteps * job.runningPolls) / this.state.opts.finetunePolls);
    const perEpoch = job.totalSteps / job.nEpochs;
    // n_checkpoints counts the final one; the others are spread evenly through training.
    const saves = new Set(
      Array.from({ length: job.nCheckpoints - 1 }, (_, i) =>
        Math.max(1, Math.round((job.totalSteps * (i + 1)) / job.nCheckpoints)),
      ),
    );
    for (let s = job.stepsDone + 1; s <= target; s++) {
      job.stepsDone = s;
      if (s % perEpoch === 0) this.event(job, "EPOCH_COMPLETE", `Epoch completed, at step ${s}`);
      if (saves.has(s) && s < job.totalSteps) {
        const path = `s3://wire-server/finetune/${job.id}/${job.outputName}/checkpoint-${s}`;
        job.checkpoints.push({
          step: s,
          path,
          created_at: iso(this.state.now()),
          checkpoint_type: "Intermediate",
        });
        this.event(job, "CHECKPOINT_SAVE", `Checkpoint saved at step ${s}`, "info", {
          checkpoint_path: path,
        });
      }
    }
  }

  private finish(job: Job): void {
    if (job.failure) {
      this.fail(job, job.failure.message);
      return;
    }
    const path = `s3://wire-server/finetune/${job.id}/${job.outputName}`;
    const created = iso(this.state.now());
    if (job.trainingType.type === "Lora") {
      job.checkpoints.push({
        step: job.totalSteps,
        path: `${path}/merged`,
        created_at: created,
        checkpoint_type: "Final Merged",
      });
      job.checkpoints.push({
        step: job.totalSteps,
        path: `${path}/adapter`,
        created_at: created,
        checkpoint_type: "Final Adapter",
      });
    } else {
      job.checkpoints.push({ step: job.totalSteps, path, created_at: created, checkpoint_type: "Final" });
    }
    this.event(job, "TRAINING_COMPLETE", `Training completed for ${job.model} at ${created}`);
    this.event(job, "MODEL_UPLOAD_COMPLETE", `Model upload complete for ${job.outputName}`, "info", {
      model_path: path,
    });
    this.state.fineTunedModels.add(job.outputName);
    job.status = "completed";
    this.event(job, "JOB_COMPLETE", `Job finished at ${created}`);
  }

  /** One poll: advance the job's state machine, then show it (with its events). */
  retrieve(inc: Incoming): Reply {
    const job = this.job(inc.params.id);
    if (job.status === "pending") {
      if (
        this.state.files
          .get(job.trainingFile)
          ?.bytes.toString("utf8")
          .includes(this.state.opts.moderationMarker)
      ) {
        this.fail(
          job,
          "Your training file was rejected by our content moderation: it contains content that violates the Together AI Acceptable Use Policy. Remove the flagged examples and submit a new job.",
        );
      } else {
        job.status = "queued";
        job.updatedAt = this.state.now();
      }
    } else if (job.status === "queued") {
      job.status = "running";
      job.startedAt = this.state.now();
      this.event(job, "JOB_START", `Job started at ${iso(job.startedAt)}`);
      this.event(job, "MODEL_DOWNLOAD_COMPLETE", `Model data downloaded for ${job.model}`);
      this.event(job, "TRAINING_DATA_DOWNLOAD_COMPLETE", `Data downloaded for ${job.model}`, "info", {
        token_count: job.tokens,
      });
      this.event(job, "TRAINING_START", `Training started for model ${job.model}`);
      job.runningPolls = 1;
      this.advance(job);
    } else if (job.status === "running") {
      job.runningPolls++;
      if (job.runningPolls > this.state.opts.finetunePolls) this.finish(job);
      else this.advance(job);
    } else if (job.status === "cancel_requested") {
      job.status = "cancelled";
      this.event(job, "JOB_STOPPED", "Job stopped: cancelled by the user");
    }
    return { status: 200, body: this.view(job, true) };
  }

  cancel(inc: Incoming): Reply {
    const job = this.job(inc.params.id);
    if (TERMINAL.includes(job.status)) {
      throw togetherError(400, `Cannot cancel job ${job.id}: it is already ${job.status}.`, "id");
    }
    if (job.status !== "cancel_requested") {
      job.status = "cancel_requested";
      this.event(job, "CANCEL_REQUESTED", "Cancel requested");
    }
    return { status: 200, body: this.view(job, false) };
  }

  /** GET /v1/fine-tunes: every job, newest first, without events (FinetuneTruncatedList). */
  list(): Reply {
    return {
      status: 200,
      body: { object: "list", data: [...this.jobs.values()].reverse().map((j) => this.view(j, false)) },
    };
  }

  /** GET .../events: oldest first, as Together lists them. */
  listEvents(inc: Incoming): Reply {
    return { status: 200, body: { object: "list", data: this.job(inc.params.id).events } };
  }

  /** GET .../checkpoints: `{data: [{step, path, created_at, checkpoint_type}]}`, newest first. */
  listCheckpoints(inc: Incoming): Reply {
    return { status: 200, body: { data: [...this.job(inc.params.id).checkpoints].reverse() } };
  }

  private view(job: Job, withEvents: boolean) {
    return {
      id: job.id,
      status: job.status,
      created_at: iso(job.createdAt),
      updated_at: iso(job.updatedAt),
      started_at: job.startedAt === null ? null : iso(job.startedAt),
      user_id: "wire-test-user",
      owner_address: "wire-test@example.com",
      total_price: 0,
      token_count: job.tokens,
      param_count: 0,
      events: withEvents ? job.events : [],
      training_file: job.trainingFile,
      validation_file: job.validationFile ?? "",
      model: job.model,
      model_output_name: job.outputName,
      model_output_path: `s3://wire-server/finetune/${job.id}/${job.outputName}`,
      trainingfile_numlines: job.lines,
      trainingfile_size: job.bytes,
      suffix: job.suffix ?? "",
      n_epochs: job.nEpochs,
      n_checkpoints: job.nCheckpoints,
      n_evals: job.nEvals,
      batch_size: job.batchSize,
      learning_rate: job.learningRate,
      lr_scheduler: { lr_scheduler_type: "linear", lr_scheduler_args: { min_lr_ratio: 0 } },
      warmup_ratio: job.warmupRatio,
      max_grad_norm: job.maxGradNorm,
      weight_decay: job.weightDecay,
      eval_steps: 0,
      train_on_inputs: job.trainingMethod.train_on_inputs,
      training_method: job.trainingMethod,
      training_type: job.trainingType,
      random_seed: job.randomSeed,
      job_id: "",
      epochs_completed: Math.floor(job.stepsDone / (job.totalSteps / job.nEpochs)),
      steps_completed: job.stepsDone,
      total_steps: job.totalSteps,
      queue_depth: 0,
      wandb_project_name: "",
      wandb_url: "",
      from_checkpoint: job.fromCheckpoint ?? "",
    };
  }
}
