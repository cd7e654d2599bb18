/**
 * A plan trained through a provider's fine-tuning API, one job per stage. Jobs are slow and
 * paid, so every step is in the run store before the next call: the stage's submission (a fresh
 * tag, the file name, the bytes' sha256) before the upload, the file id once uploaded, a
 * "creating" mark before the job is created, the job id once it is. A killed emlab resumes
 * the same job: it polls a job id it has, adopts the job a cut-off create made (found by the
 * tag), and reuses a file a cut-off upload made (found by its tagged name and size). A failed
 * job is reported with the provider's message; it is created again only on --retry-failed.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { serializeChatJsonl } from "../../datasets/chat-jsonl.ts";
import type { RemoteFinetuneResult } from "../../results/finetune.ts";
import { sha256 } from "../../runs/canonical.ts";
import { sleep } from "../../runs/limiter.ts";
import type { RunStore } from "../../runs/store.ts";
import type { PreparedPlan } from "../plan.ts";
import type { JobRequest, RemoteFinetuneApi, StageStart } from "./types.ts";

/** The store row of one stage's job: `finetune:<plan>:stage<k>` (k from 1). */
export const stageJobId = (planId: string, k: number) => `finetune:${planId}:stage${k}`;

const StageStateSchema = z.object({
  backend: z.string(),
  tag: z.string(),
  filename: z.string(),
  file_sha256: z.string(),
  bytes: z.number().int(),
  file_id: z.string().optional(),
  /** Set just before the create call: a job may exist that the store has no id for. */
  creating: z.boolean().optional(),
  job_id: z.string().optional(),
  from: z.string(),
  /** The last provider event logged (events after it are new). */
  last_event: z.string().optional(),
  loss: z.array(z.object({ step: z.number(), loss: z.number() })).default([]),
  status: z.string().optional(),
  model: z.string().optional(),
  trained_tokens: z.number().int().nullable().optional(),
  checkpoints: z
    .array(
      z.object({ model: z.string(), step: z.number().int().nullable(), train_loss: z.number().nullable() }),
    )
    .optional(),
});
type StageState = z.infer<typeof StageStateSchema>;

/** A job the provider ended in failure (or cancelled): the run fails with the provider's message. */
export class FinetuneJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FinetuneJobError";
  }
}

export interface RemoteRunOptions {
  store: RunStore;
  log: (line: string) => void;
  /** Blanks secrets in what the provider sends back (events, errors) before it is logged or stored. */
  redact: (text: string) => string;
  signal?: AbortSignal;
  /** Create a new job for a stage whose job failed (else the failure is reported again). */
  retryFailed?: boolean;
  /** Where the plan starts when it continues an earlier plan: that plan's last job and model. */
  parent?: { jobId: string; model: string };
}

/** Trains the plan's stages in order; null when the signal stopped it (the jobs go on at the provider). */
export async function trainRemotePlan(
  p: PreparedPlan,
  api: RemoteFinetuneApi,
  opts: RemoteRunOptions,
): Promise<RemoteFinetuneResult | null> {
  const { store, log, redact } = opts;
  const id = p.plan.id;
  let previous = opts.parent;
  const stages: RemoteFinetuneResult["stages"] = [];
  const loss: number[] = [];
  for (const [j, stage] of p.stages.entries()) {
    const rowId = stageJobId(id, j + 1);
    const bytes = Buffer.from(serializeChatJsonl(stage.conversations), "utf8");
    const sha = sha256(bytes);
    const start: StageStart = { base: p.root.model, ...(previous ? { previous } : {}) };
    const from = previous?.model ?? p.root.model;
    const row = store.getJob(rowId);
    let state: StageState | undefined = row ? StageStateSchema.parse(row.spec) : undefined;
    const save = (status: "pending" | "running" | "done" | "failed", error: string | null = null) =>
      store.upsertJob({
        id: rowId,
        kind: "finetune_stage",
        status,
        spec: state,
        result: null,
        error,
        started_at: new Date().toISOString(),
        ...(status === "done" || status === "failed" ? { finished_at: new Date().toISOString() } : {}),
      });

    if (row?.status === "failed" && state) {
      if (!opts.retryFailed)
        throw new FinetuneJobError(
          `${row.error ?? "the job failed"} (stored from an earlier invocation; --retry-failed creates a new job)`,
        );
      log(
        `finetune ${id}: stage ${j + 1}: job ${state.job_id ?? "?"} failed before; creating a new one (--retry-failed)`,
      );
      state = undefined;
    }
    if (state && (state.file_sha256 !== sha || state.from !== from))
      // The study is the same (resume checks its hash), so this is a changed dataset file or a retrained parent.
      throw new Error(
        `fine-tune '${id}' stage ${j + 1}: the stored job was made for other data or another start model; start a new run directory`,
      );
    if (!state) {
      const tag = randomBytes(6).toString("hex");
      state = {
        backend: api.backend,
        tag,
        filename: `emlab-${tag}-${id}-stage${j + 1}.jsonl`,
        file_sha256: sha,
        bytes: bytes.length,
        from,
        loss: [],
      };
      save("pending");
    }

    if (state.status !== "succeeded") {
      // 1. The file, once.
      if (!state.file_id) {
        const found = await api.findFile(state.filename, state.bytes);
        const file =
          found ??
          (await once(
            () => api.uploadFile(bytes, state!.filename),
            () => api.findFile(state!.filename, state!.bytes),
          ));
        state.file_id = file.id;
        save("pending");
        log(
          `finetune ${id}: stage ${j + 1}: ${found ? "found uploaded" : "uploaded"} ${state.filename} as ${file.id} (${bytes.length} bytes, ${stage.conversations.length} conversations)`,
        );
      }
      // 2. The job, once.
      const req: JobRequest = {
        plan: p.plan,
        stageIndex: j,
        stage,
        start,
        trainingFile: state.file_id,
        tag: state.tag,
      };
      if (!state.job_id) {
        const adopted = state.creating ? await api.findJob(req) : undefined;
        if (adopted)
          log(`finetune ${id}: stage ${j + 1}: adopted job ${adopted}, created before a reply was lost`);
        else {
          state.creating = true;
          save("pending");
        }
        state.job_id =
          adopted ??
          (await once(
            () => api.createJob(req),
            () => api.findJob(req),
          ));
        save("running");
        if (!adopted)
          log(`finetune ${id}: stage ${j + 1}: created ${api.backend} job ${state.job_id} from ${from}`);
      } else
        log(`finetune ${id}: stage ${j + 1}: polling job ${state.job_id} (created in an earlier invocation)`);

      // 3. Poll until it ends.
      const jobId = state.job_id;
      for (;;) {
        const job = await api.getJob(jobId);
        const events = await api.events(jobId, state.last_event);
        for (const e of events) {
          log(`finetune ${id}: ${api.backend} ${e.level}: ${redact(e.message)}`);
          if (e.step !== undefined && e.trainLoss !== undefined)
            state.loss.push({ step: e.step, loss: e.trainLoss });
        }
        if (events.length > 0) state.last_event = events[events.length - 1].id;
        state.status = job.status;
        if (job.phase === "succeeded") {
          if (!job.model) throw new Error(`${api.backend} job ${jobId} succeeded without a model name`);
          state.model = job.model;
          state.trained_tokens = job.trainedTokens;
          state.checkpoints = (await api.checkpoints(jobId)).map((c) => ({
            model: c.model,
            step: c.step,
            train_loss: c.trainLoss,
          }));
          save("done");
          log(`finetune ${id}: stage ${j + 1}: job ${jobId} succeeded: ${job.model}`);
          break;
        }
        if (job.phase === "failed") {
          const message = redact(
            `fine-tune '${id}' stage ${j + 1}: ${api.backend} job ${jobId} ${job.status}: ${job.error ?? "no message"}`,
          );
          save("failed", message);
          throw new FinetuneJobError(message);
        }
        save("running");
        if (opts.signal?.aborted) return null;
        await sleep(p.plan.poll_s * 1000, opts.signal);
        if (opts.signal?.aborted) return null;
      }
    }
    const model = state.model!;
    stages.push({
      dataset: stage.dataset,
      examples: stage.conversations.length,
      file_sha256: sha,
      file_id: state.file_id!,
      job_id: state.job_id!,
      from,
      model,
      trained_tokens: state.trained_tokens ?? null,
      checkpoints: state.checkpoints ?? [],
    });
    loss.push(...[...state.loss].sort((a, b) => a.step - b.step).map((l) => Math.round(l.loss * 1e4) / 1e4));
    previous = { jobId: state.job_id!, model };
  }
  const tokens = stages.every((s) => s.trained_tokens !== null)
    ? stages.reduce((a, s) => a + (s.trained_tokens ?? 0), 0)
    : null;
  return {
    backend: api.backend,
    base: p.plan.base,
    method: p.backend === "openai" ? "provider" : p.plan.lora ? "lora" : "full",
    model: stages[stages.length - 1].model,
    examples: stages.reduce((a, s) => a + s.examples, 0),
    tokens,
    loss_curve: loss,
    stages,
  };
}

/**
 * A creation sent once: when it fails (a lost reply, a timeout, a 5xx), what it may have made
 * is looked for before the error is believed, so a retry never makes a second one.
 */
async function once<T>(create: () => Promise<T>, find: () => Promise<T | undefined>): Promise<T> {
  try {
    return await create();
  } catch (e) {
    const made = await find().catch(() => undefined);
    if (made !== undefined) return made;
    throw e;
  }
}
