// The Python HF worker (worker/) for tests: started from .venv-torch on a free port, and the
// tiny random transformers checkpoints it can serve (scripts/reference/greedy_continuations.py).
// Tests that use these skip without .venv-torch (skipWithoutTorch in python-ref.ts).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { torchPython } from "./python-ref.ts";

const ROOT = path.join(import.meta.dirname, "../..");
const WORKER_SRC = path.join(ROOT, "worker", "src");
const LISTENING = /emlab-worker listening on (http:\/\/\S+)/;
const START_TIMEOUT_MS = 60_000;

/** Whether the worker's package is in the checkout (it may not be importable yet). */
export const workerPackagePresent = existsSync(path.join(WORKER_SRC, "emlab_worker", "__main__.py"));

export interface StartedWorker {
  url: string;
  port: number;
  proc: ChildProcess;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it exited (and its temp state dir is gone). */
  stop(): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export interface StartWorkerOptions {
  model: string;
  adapter?: string;
  /** Passed in the environment (EMLAB_WORKER_API_KEY), as `emlab worker start` does. */
  apiKey?: string;
  /** Default: a temp directory removed by stop(). */
  stateDir?: string;
  extraArgs?: string[];
}

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((done) => proc.once("exit", () => done()));
}

/** Starts `.venv-torch/bin/python -m emlab_worker --port 0 ...` and waits for its listening line. */
export async function startWorker(opts: StartWorkerOptions): Promise<StartedWorker> {
  if (!torchPython) throw new Error("startWorker: no .venv-torch (guard the test with skipWithoutTorch)");
  const ownState = opts.stateDir === undefined;
  const stateDir = opts.stateDir ?? mkdtempSync(path.join(tmpdir(), "emlab-worker-state-"));
  const args = ["-m", "emlab_worker", "--model", opts.model, "--port", "0", "--state-dir", stateDir];
  if (opts.adapter) args.push("--adapter", opts.adapter);
  args.push(...(opts.extraArgs ?? []));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PYTHONPATH: WORKER_SRC,
    PYTHONUNBUFFERED: "1",
    OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? "1",
    PYTHONHASHSEED: "0",
  };
  delete env.EMLAB_WORKER_API_KEY;
  if (opts.apiKey !== undefined) env.EMLAB_WORKER_API_KEY = opts.apiKey;
  const proc = spawn(torchPython, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (c: string) => {
    stderr = (stderr + c).slice(-8000);
  });
  const cleanup = () => {
    if (ownState) rmSync(stateDir, { recursive: true, force: true });
  };
  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(
        () =>
          reject(
            new Error(`emlab_worker did not listen within ${START_TIMEOUT_MS / 1000} s; stderr:\n${stderr}`),
          ),
        START_TIMEOUT_MS,
      );
      proc.stdout!.setEncoding("utf8");
      proc.stdout!.on("data", (c: string) => {
        out += c;
        const m = LISTENING.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1].replace(/\/+$/, ""));
        }
      });
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`emlab_worker exited (${signal ?? code}) before it listened; stderr:\n${stderr}`));
      });
      proc.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  } catch (e) {
    proc.kill("SIGKILL");
    await exited(proc);
    cleanup();
    throw e;
  }
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    proc,
    kill: (signal: NodeJS.Signals = "SIGKILL") => {
      proc.kill(signal);
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
        await exited(proc);
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}

const TINY_SCRIPTS = ["greedy_continuations.py", "chat_templates.py", "tokenizers_sp.py"].map((f) =>
  path.join(ROOT, "scripts", "reference", f),
);
let tiny: Promise<string> | undefined;

/**
 * The tiny random transformers checkpoints of greedy_continuations.py (`qwen2-v5`,
 * `llama3-v5`, ... inside the returned directory): made once per machine and script version
 * (a temp directory keyed by the scripts' hash), once per process looked up.
 */
export function tinyHfModels(): Promise<string> {
  tiny ??= makeTinyHfModels();
  return tiny;
}

async function makeTinyHfModels(): Promise<string> {
  if (!torchPython) throw new Error("tinyHfModels: no .venv-torch (guard the test with skipWithoutTorch)");
  const hash = createHash("sha256");
  for (const f of TINY_SCRIPTS) hash.update(readFileSync(f));
  const dir = path.join(tmpdir(), `emlab-tiny-hf-${hash.digest("hex").slice(0, 16)}`);
  const done = path.join(dir, ".complete");
  if (existsSync(done)) return dir;
  // Built beside it and renamed into place, so a parallel test file never sees half a directory.
  const building = mkdtempSync(`${dir}.building-`);
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(
        torchPython!,
        [TINY_SCRIPTS[0], building],
        {
          maxBuffer: 64 << 20,
          timeout: 300_000,
          env: { ...process.env, OMP_NUM_THREADS: "1", PYTHONHASHSEED: "0" },
        },
        (err, _stdout, stderr) =>
          err ? reject(new Error(`${TINY_SCRIPTS[0]} failed: ${err.message}\n${stderr}`)) : resolve(),
      );
    });
    writeFileSync(path.join(building, ".complete"), "");
    try {
      renameSync(building, dir);
    } catch (e) {
      // Another process got there first: its directory is as good as ours.
      if (!existsSync(done)) throw e;
    }
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  return dir;
}
