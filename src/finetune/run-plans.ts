/**
 * Fine-tune plans inside a run: each plan is a job in the run store ("finetune:<plan id>").
 * A plan whose job is done (and whose output is on disk) is not trained again; any other is
 * trained from scratch, saved, recorded as an artifact with its sha256, and marked done
 * before the next plan starts, so a killed run resumes after the last finished plan.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import {
  type FinetuneResult,
  FinetuneResultSchema,
  type RemoteFinetuneResult,
  RemoteFinetuneResultSchema,
} from "../results/finetune.ts";
import type { RunStore } from "../runs/store.ts";
import { exportedOnDisk, exportPlan } from "./export-plan.ts";
import { trainLocalPlan } from "./local.ts";
import { isRemoteBackend, type PreparedPlan } from "./plan.ts";
import { remoteFinetuneApi } from "./remote/index.ts";
import { trainRemotePlan } from "./remote/run-remote.ts";

export const finetuneJobId = (planId: string) => `finetune:${planId}`;

export interface RunPlansOptions {
  store: RunStore;
  runDir: string;
  signal?: AbortSignal;
  /** One line per event (start, progress every tenth of the steps, finish). */
  log: (line: string) => void;
  /** Where the remote backends read their keys. */
  env?: NodeJS.ProcessEnv;
  /** Blanks secrets in provider text before it is logged or stored. */
  redact?: (text: string) => string;
  /** Create new provider jobs for stages whose jobs failed (`--retry-failed`). */
  retryFailed?: boolean;
}

/** sha256 over a directory's files (and its subfolders'): each file's relative path and content hash, in path order. */
export function hashDir(dir: string): { sha256: string; files: Record<string, string> } {
  const files: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    )) {
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(name);
      else
        files[name] = createHash("sha256")
          .update(readFileSync(path.join(dir, name)))
          .digest("hex");
    }
  };
  walk("");
  const all = createHash("sha256");
  for (const [name, h] of Object.entries(files)) all.update(`${name}\u0000${h}\n`);
  return { sha256: all.digest("hex"), files };
}

/** Whether a done plan's output is still there: weights (local), the bundle (export); a provider keeps its own. */
function outputOnDisk(p: PreparedPlan): boolean {
  if (p.backend === "export") return exportedOnDisk(p);
  if (p.backend !== "local") return true;
  const need = p.plan.lora ? "adapter_model.safetensors" : "model.safetensors";
  return existsSync(path.join(p.outDir, need));
}

/** A remote plan's result, when its job row is done. */
export function remotePlanResult(store: RunStore, planId: string): RemoteFinetuneResult | undefined {
  const job = store.getJob(finetuneJobId(planId));
  if (job?.status !== "done") return undefined;
  const r = RemoteFinetuneResultSchema.safeParse(job.result);
  return r.success ? r.data : undefined;
}

/** Trains every plan not done yet, in order. Returns false when the signal stopped it. */
export async function runFinetunePlans(plans: PreparedPlan[], opts: RunPlansOptions): Promise<boolean> {
  const { store, log } = opts;
  for (const p of plans) {
    const id = p.plan.id;
    const jobId = finetuneJobId(id);
    if (store.getJob(jobId)?.status === "done" && outputOnDisk(p)) {
      log(`finetune ${id}: done in an earlier invocation, not trained again`);
      continue;
    }
    const spec = {
      plan: p.plan,
      seed: p.seed,
      start: p.start,
      // Counts, not the data: the datasets are the study's inputs, hashed when the run started.
      stages: p.stages.map(({ examples, conversations, ...s }) => ({
        ...s,
        examples: examples.length,
        conversations: conversations.length,
      })),
    };
    const totalSteps = p.stages.reduce((a, s) => a + s.steps, 0);
    const every = Math.max(1, Math.ceil(totalSteps / 10));
    log(
      p.backend === "local"
        ? `finetune ${id}: ${p.plan.lora ? "LoRA" : "full"} on ${p.plan.base}, ${totalSteps} step(s)`
        : `finetune ${id}: ${p.backend}, ${p.stages.length} stage(s) on ${p.plan.base}`,
    );
    store.upsertJob({
      id: jobId,
      kind: "finetune",
      status: "running",
      spec,
      result: null,
      error: null,
      started_at: new Date().toISOString(),
    });
    const t0 = performance.now();
    let result: FinetuneResult | null;
    try {
      if (p.backend === "export") result = exportPlan(p, opts.runDir);
      else if (isRemoteBackend(p.backend)) {
        const parent = p.parent ? remotePlanResult(store, p.parent) : undefined;
        result = await trainRemotePlan(p, remoteFinetuneApi(p.backend, p.root, opts.env ?? process.env), {
          store,
          log,
          redact: opts.redact ?? ((t) => t),
          signal: opts.signal,
          retryFailed: opts.retryFailed,
          ...(parent ? { parent: { jobId: parent.stages.at(-1)!.job_id, model: parent.model } } : {}),
        });
      } else
        result = await trainLocalPlan(p, {
          signal: opts.signal,
          onStep: (r) => {
            if (r.step % every === 0 || r.step === r.totalSteps)
              log(`finetune ${id}: step ${r.step}/${r.totalSteps} loss ${r.loss.toFixed(4)}`);
          },
        });
    } catch (e) {
      store.upsertJob({
        id: jobId,
        kind: "finetune",
        status: "failed",
        spec,
        result: null,
        error: (e as Error).message,
        finished_at: new Date().toISOString(),
      });
      throw e;
    }
    if (!result) {
      store.upsertJob({
        id: jobId,
        kind: "finetune",
        status: "failed",
        spec,
        result: null,
        error:
          p.backend === "local"
            ? "interrupted (trained again from scratch on --resume)"
            : "interrupted (--resume polls the same provider job)",
        finished_at: new Date().toISOString(),
      });
      log(`finetune ${id}: interrupted`);
      return false;
    }
    const seconds = (performance.now() - t0) / 1000;
    if (p.backend === "local" || p.backend === "export") {
      const { sha256, files } = hashDir(p.outDir);
      store.addArtifact({
        id: jobId,
        kind: p.backend === "export" ? "export_bundle" : p.plan.lora ? "lora_adapter" : "model",
        path: path.relative(opts.runDir, p.outDir),
        sha256,
        meta: { plan: id, base: p.plan.base, files },
      });
    }
    store.upsertJob({
      id: jobId,
      kind: "finetune",
      status: "done",
      spec,
      // Timings stay in the store; results.json gets only what a rerun reproduces.
      result: { ...result, seconds: Math.round(seconds * 100) / 100 },
      error: null,
      finished_at: new Date().toISOString(),
    });
    if ("backend" in result)
      log(
        result.backend === "export"
          ? `finetune ${id}: exported to ${result.dir} (${result.examples} conversations; run it with the commands in its README.md)`
          : `finetune ${id}: done, ${result.backend} model ${result.model}, ${result.tokens ?? "?"} tokens trained, ${seconds.toFixed(1)}s`,
      );
    else
      log(
        `finetune ${id}: done, ${result.steps} step(s), loss ${result.first_loss} -> ${result.last_loss}, ` +
          `${result.tokens} tokens, ${seconds.toFixed(1)}s (${Math.round(result.tokens / Math.max(seconds, 1e-3))} tokens/s)`,
      );
  }
  return true;
}

/** The `finetune` block of results.json, from the store's finished jobs. */
export function finetuneResults(store: RunStore, plans: PreparedPlan[]): Record<string, FinetuneResult> {
  const out: Record<string, FinetuneResult> = {};
  for (const p of plans) {
    const job = store.getJob(finetuneJobId(p.plan.id));
    if (job?.status !== "done" || job.result == null)
      throw new Error(`fine-tune job ${finetuneJobId(p.plan.id)} is not done`);
    // parse() drops the stored timing.
    out[p.plan.id] = FinetuneResultSchema.parse(job.result);
  }
  return out;
}
