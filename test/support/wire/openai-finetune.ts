// OpenAI fine-tuning jobs (POST/GET /v1/fine_tuning/jobs...): a job moves validating_files →
// queued → running → succeeded | failed | cancelled as it is polled, writing the events,
// checkpoints, result file and fine-tuned model name the real API does.

import {
  type FinetuneFailure,
  type Incoming,
  isObject,
  type Reply,
  type ServerState,
  type StoredFile,
} from "./context.ts";
import { openaiError } from "./openai-chat.ts";
import { hexOf, rngFromKey } from "./random.ts";
import { checkOpenAITrainingFile, type TrainingStats } from "./training-data.ts";

/** The org slug in fine-tuned model names (`ft:<base>:<org>:<suffix>:<id>`). */
export const OPENAI_ORG_SLUG = "wire-test";
const ORGANIZATION_ID = "org-wiretest000000000000000";

const invalid = (message: string, param: string | null = null, code: string | null = null) =>
  openaiError(400, message, "invalid_request_error", param, code);

type Auto<T> = T | "auto";
interface Hyperparameters {
  n_epochs: Auto<number>;
  batch_size: Auto<number>;
  learning_rate_multiplier: Auto<number>;
}

interface JobEvent {
  id: string;
  created_at: number;
  level: "info" | "warn" | "error";
  message: string;
  object: "fine_tuning.job.event";
  data: Record<string, unknown>;
  type: "message" | "metrics";
}

interface Checkpoint {
  id: string;
  created_at: number;
  fine_tuned_model_checkpoint: string;
  fine_tuning_job_id: string;
  metrics: Record<string, number>;
  object: "fine_tuning.job.checkpoint";
  step_number: number;
}

type Status = "validating_files" | "queued" | "running" | "succeeded" | "failed" | "cancelled";

interface Job {
  id: string;
  model: string;
  trainingFile: string;
  validationFile: string | null;
  suffix: string | null;
  seed: number;
  metadata: Record<string, string> | null;
  hyperparameters: Hyperparameters;
  createdAt: number;
  status: Status;
  runningPolls: number;
  error: { code: string; message: string; param: string | null } | null;
  fineTunedModel: string | null;
  finishedAt: number | null;
  trainedTokens: number | null;
  resultFiles: string[];
  events: JobEvent[];
  checkpoints: Checkpoint[];
  failure: FinetuneFailure | null;
  stats: TrainingStats | null;
  stepsPerEpoch: number;
  totalSteps: number;
  stepsDone: number;
  metricsRows: string[];
}

const TERMINAL: Status[] = ["succeeded", "failed", "cancelled"];

/** `hyperparameters` (legacy top level or method.supervised): each "auto" or a number in range. */
function parseHyperparameters(value: unknown, path: string): Hyperparameters {
  const out: Hyperparameters = { n_epochs: "auto", batch_size: "auto", learning_rate_multiplier: "auto" };
  if (value === undefined || value === null) return out;
  if (!isObject(value))
    throw invalid(`Invalid type for '${path}': expected an object.`, path, "invalid_type");
  const limits = {
    n_epochs: [1, 50, true],
    batch_size: [1, 256, true],
    learning_rate_multiplier: [0, 10, false],
  };
  for (const [key, v] of Object.entries(value)) {
    const limit = limits[key as keyof typeof limits];
    const param = `${path}.${key}`;
    if (!limit) throw invalid(`Unrecognized request argument supplied: ${param}`, param, "unknown_parameter");
    if (v === "auto" || v === undefined) continue;
    const [lo, hi, integer] = limit;
    const ok =
      typeof v === "number" && Number.isFinite(v) && (!integer || Number.isInteger(v)) && v <= (hi as number);
    if (!ok || (integer ? (v as number) < (lo as number) : (v as number) <= (lo as number))) {
      throw invalid(
        `Invalid value for '${param}': expected 'auto' or ${integer ? "an integer" : "a number"} ${integer ? `between ${lo} and ${hi}` : `greater than ${lo} and at most ${hi}`}.`,
        param,
        "invalid_value",
      );
    }
    out[key as keyof Hyperparameters] = v as number;
  }
  return out;
}

function parseMetadata(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value))
    throw invalid("Invalid type for 'metadata': expected an object.", "metadata", "invalid_type");
  const entries = Object.entries(value);
  if (entries.length > 16) {
    throw invalid(
      `Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an object with ${entries.length} properties instead.`,
      "metadata",
      "object_above_max_properties",
    );
  }
  for (const [k, v] of entries) {
    if (k.length > 64) {
      throw invalid(
        `Invalid 'metadata': key '${k.slice(0, 20)}...' is too long. Keys have a maximum length of 64.`,
        "metadata",
        "invalid_value",
      );
    }
    if (typeof v !== "string") {
      throw invalid(`Invalid type for 'metadata.${k}': expected a string.`, `metadata.${k}`, "invalid_type");
    }
    if (v.length > 512) {
      throw invalid(
        `Invalid 'metadata.${k}': string too long. Expected a string with maximum length 512, but got a string with length ${v.length} instead.`,
        `metadata.${k}`,
        "string_above_max_length",
      );
    }
  }
  return value as Record<string, string>;
}

export class OpenAIFineTuning {
  private jobs = new Map<string, Job>();

  constructor(private state: ServerState) {}

  /** Models a job may start from: the server's models and the fine-tuned models it made. */
  private tunable(model: string, baseModels: string[]): boolean {
    return baseModels.includes(model) || (model.startsWith("ft:") && this.state.fineTunedModels.has(model));
  }

  private trainingInput(
    body: Record<string, unknown>,
    param: "training_file" | "validation_file",
  ): StoredFile | null {
    const id = body[param];
    if (id === undefined || id === null) return null;
    if (typeof id !== "string")
      throw invalid(`Invalid type for '${param}': expected a string.`, param, "invalid_type");
    const f = this.state.files.get(id);
    if (!f) throw invalid(`invalid ${param}: ${id}`, param);
    if (f.purpose !== "fine-tune") {
      throw invalid(
        `File ${id} has purpose '${f.purpose}'; files for fine-tuning must be uploaded with purpose 'fine-tune'.`,
        param,
        "invalid_value",
      );
    }
    return f;
  }

  create(inc: Incoming, baseModels: string[]): Reply {
    const body = inc.json;
    if (!isObject(body)) throw invalid("We could not parse the JSON body of your request.");
    for (const field of ["model", "training_file"]) {
      if (body[field] === undefined || body[field] === null) {
        throw invalid(`Missing required parameter: '${field}'.`, field, "missing_required_parameter");
      }
    }
    if (typeof body.model !== "string")
      throw invalid("Invalid type for 'model': expected a string.", "model", "invalid_type");
    if (!this.tunable(body.model, baseModels)) {
      throw invalid(
        `Model ${body.model} is not available for fine-tuning or does not exist.`,
        "model",
        "model_not_available",
      );
    }
    const training = this.trainingInput(body, "training_file") as StoredFile;
    const validation = this.trainingInput(body, "validation_file");
    let suffix: string | null = null;
    if (body.suffix !== undefined && body.suffix !== null) {
      if (typeof body.suffix !== "string")
        throw invalid("Invalid type for 'suffix': expected a string.", "suffix", "invalid_type");
      if (body.suffix.length > 64) {
        throw invalid(
          `Invalid 'suffix': string too long. Expected a string with maximum length 64, but got a string with length ${body.suffix.length} instead.`,
          "suffix",
          "string_above_max_length",
        );
      }
      suffix = body.suffix;
    }
    if (body.seed !== undefined && body.seed !== null && !Number.isInteger(body.seed)) {
      throw invalid("Invalid type for 'seed': expected an integer.", "seed", "invalid_type");
    }
    const metadata = parseMetadata(body.metadata);
    let hyperparameters = parseHyperparameters(body.hyperparameters, "hyperparameters");
    if (body.method !== undefined && body.method !== null) {
      const method = body.method;
      if (!isObject(method) || typeof method.type !== "string") {
        throw invalid(
          "Missing required parameter: 'method.type'.",
          "method.type",
          "missing_required_parameter",
        );
      }
      if (!["supervised", "dpo", "reinforcement"].includes(method.type)) {
        throw invalid(
          `Invalid value: '${method.type}'. Supported values are: 'supervised', 'dpo', and 'reinforcement'.`,
          "method.type",
          "invalid_value",
        );
      }
      if (method.type !== "supervised") {
        throw invalid(
          `wire-server: only supervised fine-tuning is implemented, not ${method.type}.`,
          "method.type",
        );
      }
      if (body.hyperparameters !== undefined && body.hyperparameters !== null) {
        throw invalid(
          "The 'hyperparameters' parameter is deprecated; pass them in 'method.supervised.hyperparameters' instead, not both.",
          "hyperparameters",
        );
      }
      const supervised = isObject(method.supervised) ? method.supervised : {};
      hyperparameters = parseHyperparameters(supervised.hyperparameters, "method.supervised.hyperparameters");
    }
    const id = this.state.newId("ftjob-", 24);
    const now = this.state.now();
    const job: Job = {
      id,
      model: body.model,
      trainingFile: training.id,
      validationFile: validation?.id ?? null,
      suffix,
      seed: typeof body.seed === "number" ? body.seed : Number.parseInt(hexOf(`${id}:seed`, 8), 16) % 2 ** 31,
      metadata,
      hyperparameters,
      createdAt: now,
      status: "validating_files",
      runningPolls: 0,
      error: null,
      fineTunedModel: null,
      finishedAt: null,
      trainedTokens: null,
      resultFiles: [],
      events: [],
      checkpoints: [],
      failure: this.state.finetuneFailures.shift() ?? null,
      stats: null,
      stepsPerEpoch: 0,
      totalSteps: 0,
      stepsDone: 0,
      metricsRows: [],
    };
    this.jobs.set(id, job);
    this.event(job, "info", `Created fine-tuning job: ${id}`);
    this.event(job, "info", `Validating training file: ${training.id}`);
    if (validation) this.event(job, "info", `Validating validation file: ${validation.id}`);
    return { status: 200, body: this.view(job) };
  }

  private event(
    job: Job,
    level: JobEvent["level"],
    message: string,
    type: JobEvent["type"] = "message",
    data: Record<string, unknown> = {},
  ): void {
    job.events.push({
      id: `ftevent-${hexOf(`${job.id}:event:${job.events.length}`, 24)}`,
      created_at: this.state.now(),
      level,
      message,
      object: "fine_tuning.job.event",
      data,
      type,
    });
  }

  private job(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) {
      throw openaiError(
        404,
        `No fine-tuning job found with id '${id}'.`,
        "invalid_request_error",
        "fine_tuning_job_id",
      );
    }
    return job;
  }

  private fail(job: Job, error: NonNullable<Job["error"]>): void {
    job.status = "failed";
    job.error = error;
    job.finishedAt = this.state.now();
    this.event(job, "error", error.message);
  }

  /** The validating_files step: format, size and moderation checks of the job's files. */
  private validate(job: Job): void {
    const min = this.state.opts.finetuneMinExamples;
    for (const [param, fileId] of [
      ["training_file", job.trainingFile],
      ["validation_file", job.validationFile],
    ] as const) {
      if (fileId === null) continue;
      const f = this.state.files.get(fileId);
      const text = f?.bytes.toString("utf8") ?? "";
      const what = param === "training_file" ? "training" : "validation";
      const checked = checkOpenAITrainingFile(text, param === "training_file" ? min : 1);
      if ("problem" in checked) {
        this.fail(job, {
          code: `invalid_${param}`,
          message: `The job failed due to a file format error in the ${what} file. ${checked.problem.message}`,
          param,
        });
        return;
      }
      if (text.includes(this.state.opts.moderationMarker)) {
        this.fail(job, {
          code: `invalid_${param}`,
          message: `The job failed due to an invalid ${what} file. This ${what} file was blocked because too many examples were flagged by our moderation API for containing content that violates OpenAI's usage policies in the following categories: violence. Use the free OpenAI Moderation API to identify these examples and remove them from your ${what} data.`,
          param,
        });
        return;
      }
      if (param === "training_file") job.stats = checked.stats;
    }
    job.status = "queued";
    this.event(job, "info", "Files validated, moving job to queued state");
  }

  /** queued → running: "auto" hyperparameters get their values, as the real job shows them. */
  private start(job: Job): void {
    const examples = job.stats?.examples ?? 1;
    const hp = job.hyperparameters;
    if (hp.n_epochs === "auto") hp.n_epochs = 3;
    if (hp.batch_size === "auto") hp.batch_size = 1;
    if (hp.learning_rate_multiplier === "auto") hp.learning_rate_multiplier = 1.8;
    job.stepsPerEpoch = Math.ceil(examples / hp.batch_size);
    job.totalSteps = job.stepsPerEpoch * hp.n_epochs;
    job.status = "running";
    this.event(job, "info", "Fine-tuning job started");
  }

  private modelName(job: Job): string {
    const base = job.model.startsWith("ft:") ? job.model.split(":")[1] : job.model;
    return `ft:${base}:${OPENAI_ORG_SLUG}:${job.suffix ?? ""}:${hexOf(`${job.id}:model`, 8)}`;
  }

  /** One running poll: the steps up to this poll's share of the total pass, with metrics. */
  private advance(job: Job): void {
    const polls = this.state.opts.finetunePolls;
    const target = Math.floor((job.totalSteps * job.runningPolls) / polls);
    const rng = rngFromKey(`${job.id}:${job.seed}:metrics`);
    for (let s = 1; s <= target; s++) {
      const progress = s / job.totalSteps;
      const loss = 2.2 * Math.exp(-2 * progress) + 0.2 * rng();
      const accuracy = Math.min(1, 0.45 + 0.5 * progress + 0.05 * rng());
      if (s <= job.stepsDone) continue; // the draws above keep each step's numbers fixed
      const data: Record<string, number> = {
        step: s,
        train_loss: Number(loss.toFixed(5)),
        train_mean_token_accuracy: Number(accuracy.toFixed(5)),
        total_steps: job.totalSteps,
      };
      if (job.validationFile) {
        data.valid_loss = Number((loss * 1.1).toFixed(5));
        data.valid_mean_token_accuracy = Number((accuracy * 0.95).toFixed(5));
      }
      this.event(
        job,
        "info",
        `Step ${s}/${job.totalSteps}: training loss=${loss.toFixed(2)}`,
        "metrics",
        data,
      );
      job.metricsRows.push(
        [
          s,
          data.train_loss,
          data.train_mean_token_accuracy,
          data.valid_loss ?? "",
          data.valid_mean_token_accuracy ?? "",
        ].join(","),
      );
      if (s % job.stepsPerEpoch === 0) {
        const name = `${this.modelName(job)}:ckpt-step-${s}`;
        job.checkpoints.push({
          id: `ftckpt_${hexOf(`${job.id}:ckpt:${s}`, 24)}`,
          created_at: this.state.now(),
          fine_tuned_model_checkpoint: name,
          fine_tuning_job_id: job.id,
          metrics: job.validationFile
            ? {
                ...data,
                full_valid_loss: data.valid_loss,
                full_valid_mean_token_accuracy: data.valid_mean_token_accuracy,
              }
            : { ...data },
          object: "fine_tuning.job.checkpoint",
          step_number: s,
        });
        this.state.fineTunedModels.add(name);
        this.event(job, "info", `Checkpoint created at step ${s}`);
      }
    }
    job.stepsDone = Math.max(job.stepsDone, target);
  }

  private finish(job: Job): void {
    if (job.failure) {
      this.fail(job, { code: job.failure.code ?? "server_error", message: job.failure.message, param: null });
      return;
    }
    const name = this.modelName(job);
    const epochs = job.hyperparameters.n_epochs as number;
    job.fineTunedModel = name;
    job.trainedTokens = (job.stats?.tokens ?? 0) * epochs;
    const results: StoredFile = {
      id: this.state.newId("file-", 22),
      filename: "step_metrics.csv",
      purpose: "fine-tune-results",
      bytes: Buffer.from(
        `${["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy", ...job.metricsRows].join("\n")}\n`,
      ),
      createdAt: this.state.now(),
    };
    this.state.files.set(results.id, results);
    job.resultFiles = [results.id];
    this.state.fineTunedModels.add(name);
    job.status = "succeeded";
    job.finishedAt = this.state.now();
    this.event(job, "info", `New fine-tuned model created: ${name}`);
    this.event(job, "info", "The job has successfully completed");
  }

  /** One poll: advance the job's state machine, then show it. */
  retrieve(inc: Incoming): Reply {
    const job = this.job(inc.params.id);
    if (job.status === "validating_files") this.validate(job);
    else if (job.status === "queued") {
      this.start(job);
      job.runningPolls = 1;
      this.advance(job);
    } else if (job.status === "running") {
      job.runningPolls++;
      if (job.runningPolls > this.state.opts.finetunePolls) this.finish(job);
      else this.advance(job);
    }
    return { status: 200, body: this.view(job) };
  }

  cancel(inc: Incoming): Reply {
    const job = this.job(inc.params.id);
    if (TERMINAL.includes(job.status)) {
      throw invalid(
        `Job ${job.id} has already ${job.status === "cancelled" ? "been cancelled" : job.status}.`,
        "fine_tuning_job_id",
      );
    }
    job.status = "cancelled";
    job.finishedAt = this.state.now();
    this.event(job, "info", "Fine-tuning job cancelled");
    return { status: 200, body: this.view(job) };
  }

  /** GET /v1/fine_tuning/jobs: newest first; `after`, `limit`, `metadata[k]=v` (or `metadata=null`). */
  list(inc: Incoming): Reply {
    const filters: Array<[string, string]> = [];
    for (const [k, v] of inc.query) {
      const m = /^metadata\[(.+)\]$/.exec(k);
      if (m) filters.push([m[1], v]);
    }
    const noMetadata = inc.query.get("metadata") === "null";
    const jobs = [...this.jobs.values()]
      .reverse()
      .filter((j) => (noMetadata ? j.metadata === null : filters.every(([k, v]) => j.metadata?.[k] === v)));
    return { status: 200, body: this.page(jobs, inc, 20, (j) => this.view(j)) };
  }

  /** GET .../events: newest first, `after` an event id, `limit` (default 20). */
  listEvents(inc: Incoming): Reply {
    const job = this.job(inc.params.id);
    return { status: 200, body: this.page([...job.events].reverse(), inc, 20, (e) => e) };
  }

  /** GET .../checkpoints: newest first, `after` a checkpoint id, `limit` (default 10). */
  listCheckpoints(inc: Incoming): Reply {
    const job = this.job(inc.params.id);
    return { status: 200, body: this.page([...job.checkpoints].reverse(), inc, 10, (c) => c) };
  }

  private page<T extends { id: string }, V>(
    items: T[],
    inc: Incoming,
    defaultLimit: number,
    show: (t: T) => V,
  ) {
    const limitRaw = inc.query.get("limit");
    const limit = limitRaw === null ? defaultLimit : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw invalid(
        `Invalid value for 'limit': expected an integer between 1 and 100, got '${limitRaw}'.`,
        "limit",
        "invalid_value",
      );
    }
    const after = inc.query.get("after");
    // An `after` that names nothing in the list yields an empty page.
    const start = after === null ? 0 : items.findIndex((i) => i.id === after) + 1 || items.length;
    const slice = items.slice(start, start + limit);
    const data = slice.map(show);
    return {
      object: "list",
      data,
      first_id: slice[0]?.id ?? null,
      last_id: slice.at(-1)?.id ?? null,
      has_more: start + slice.length < items.length,
    };
  }

  private view(job: Job) {
    const hp = { ...job.hyperparameters };
    return {
      id: job.id,
      object: "fine_tuning.job",
      created_at: job.createdAt,
      error: job.error,
      fine_tuned_model: job.fineTunedModel,
      finished_at: job.finishedAt,
      hyperparameters: hp,
      model: job.model,
      organization_id: ORGANIZATION_ID,
      result_files: job.resultFiles,
      seed: job.seed,
      status: job.status,
      trained_tokens: job.trainedTokens,
      training_file: job.trainingFile,
      validation_file: job.validationFile,
      estimated_finish:
        job.status === "running"
          ? this.state.now() + 60 * Math.max(1, this.state.opts.finetunePolls - job.runningPolls + 1)
          : null,
      integrations: [],
      metadata: job.metadata,
      method: { type: "supervised", supervised: { hyperparameters: hp } },
      user_provided_suffix: job.suffix,
    };
  }
}
