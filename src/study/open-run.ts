/**
 * Step 2 of a run: the run directory, opened atomically (the store is made in .run-opening/
 * with the study row, models and input-file hashes, then renamed to run.sqlite) or, with
 * `--resume`, reopened after checking that neither the study nor a file it names changed;
 * `--retry-failed` (a resume) also puts the failed requests back to pending.
 * Also the response cache, run.log (every line redacted) and the progress sink.
 */
import { appendFileSync, existsSync } from "node:fs";
import path from "node:path";
import { InputError } from "../config/load.ts";
import type { Study } from "../config/schema.ts";
import { ResponseCache } from "../runs/cache.ts";
import { canonicalJson, sha256 } from "../runs/canonical.ts";
import { checkInputFiles, inputFileHashes, recordInputFiles } from "../runs/input-files.ts";
import { createRunStore, killedWhileOpening, lockRunDir } from "../runs/lock.ts";
import type { ProgressSink } from "../runs/scheduler.ts";
import { RunStore, STORE_FILE } from "../runs/store.ts";
import type { ValidatedStudy } from "./validate.ts";

export interface RunDirOptions {
  outDir: string;
  resume?: boolean;
  /** Resume, and try the requests that failed again (they go back to pending). */
  retryFailed?: boolean;
  noCache?: boolean;
  cacheDir?: string;
  progress?: ProgressSink;
}

/** An open run directory: its store, the cache, run.log and progress. */
export interface OpenRun {
  outDir: string;
  store: RunStore;
  cache: ResponseCache | undefined;
  /** Appends a line (redacted) to run.log. */
  log: (line: string) => void;
  /** The caller's sink, every line also written to run.log. */
  progress: ProgressSink | undefined;
  /** Progress when there is a sink, else run.log. */
  say: (line: string) => void;
  close: () => void;
}

export function studyHash(study: Study): string {
  return sha256(canonicalJson(study));
}

const alreadyARun = (outDir: string) =>
  new InputError([
    { file: outDir, message: "already holds a run: add --resume to continue it, or choose another --out" },
  ]);

export function openRunDir(v: ValidatedStudy, opts: RunDirOptions): OpenRun {
  const { outDir } = opts;
  const resume = opts.resume || opts.retryFailed;
  const { study, declared, file, loaded, redactor } = v;
  const storePath = path.join(outDir, STORE_FILE);
  const exists = existsSync(storePath);
  if (exists && !resume) throw alreadyARun(outDir);
  if (!exists && resume)
    throw new InputError([
      {
        file: outDir,
        message: killedWhileOpening(outDir)
          ? "holds no run to resume: one was killed while it was being created, before anything was stored; start it again without --resume"
          : "holds no run to resume",
      },
    ]);

  const unlock = lockRunDir(outDir);
  const hash = studyHash(declared);
  let inputs: Record<string, string>;
  // What a resume checks: written before a new run's store becomes run.sqlite, the study row last.
  const recordOpening = (s: RunStore) => {
    recordInputFiles(outDir, inputs);
    for (const m of study.models) s.upsertModel({ ...m, base_url: m.base_url, roles: m.roles });
    s.setStudy({
      name: study.name,
      config: declared,
      config_hash: hash,
      source_path: file,
      source_text: loaded.text,
    });
  };
  let store: RunStore;
  try {
    inputs = inputFileHashes(declared, v.studyDir);
    if (!exists) {
      // Another process may have created the run between the check above and the lock.
      if (existsSync(storePath)) throw alreadyARun(outDir);
      createRunStore(outDir, recordOpening, v.env);
    }
    store = RunStore.open(outDir);
  } catch (e) {
    unlock();
    throw e;
  }
  let cache: ResponseCache | undefined;
  try {
    cache = opts.noCache ? undefined : new ResponseCache(opts.cacheDir);
  } catch (e) {
    // An unwritable or damaged cache must not leave the store open and the directory locked.
    store.close();
    unlock();
    throw e;
  }
  const logFile = path.join(outDir, "run.log");
  const log = (line: string) =>
    appendFileSync(logFile, `${new Date().toISOString()} ${redactor.redact(line)}\n`);
  const sink = opts.progress;
  const progress: ProgressSink | undefined = sink && {
    start: (s) => sink.start(s),
    update: (s) => sink.update(s),
    stop: () => sink.stop(),
    log: (line) => {
      log(line);
      sink.log(redactor.redact(line));
    },
  };
  const run: OpenRun = {
    outDir,
    store,
    cache,
    log,
    progress,
    say: (line) => (progress ? progress.log(line) : log(line)),
    close: () => {
      cache?.close();
      store.close();
      unlock();
    },
  };
  if (!exists) return run;
  try {
    const prev = store.getStudy();
    if (!prev) {
      // A store with no study row: a run an older emlab was creating when it was killed.
      // Nothing can have been stored yet, so finishing the opening now starts that run.
      if (store.counts().requests > 0 || store.listJobs().length > 0)
        throw new InputError([
          {
            file: outDir,
            message:
              "holds a run store with work in it but no study recorded; start a new run with another --out",
          },
        ]);
      recordOpening(store);
      log("resume: the run was killed while it was being created; its opening is completed now");
    }
    if (prev && prev.config_hash !== hash)
      throw new InputError([
        {
          file,
          message: `the study changed since the run in ${outDir} started; start a new run with another --out`,
        },
      ]);
    checkInputFiles(outDir, file, inputs);
    if (opts.retryFailed) log(`resume: ${store.resetFailed()} failed request(s) will be tried again`);
    else {
      const failed = store.counts().requestsFailed;
      log(
        `resume: ${failed} failed request(s) stay failed${failed > 0 ? " (--retry-failed tries them again)" : ""}`,
      );
    }
  } catch (e) {
    run.close();
    throw e;
  }
  return run;
}
