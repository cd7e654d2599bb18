/**
 * `emlab worker start`: runs emlab's Python HF worker (worker/, docs/worker-protocol.md) on
 * this machine, the one with the model and the GPU. Once it listens, prints the URL and the
 * study's model entry for the `hf-worker` provider.
 *
 * The key never goes on the worker's command line (ps shows argv to every user): it is read
 * from the variable --api-key-env names (or EMLAB_WORKER_API_KEY) and handed to the worker in
 * its environment.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { HF_WORKER_KEY_ENV } from "../models/hf-worker.ts";
import { badOption, command, EXIT, intOption } from "./exit.ts";

/** What Commander hands the action (strings as typed). */
export interface WorkerStartCliOptions {
  model?: string;
  adapter?: string;
  device?: string;
  dtype?: string;
  port: string;
  host: string;
  apiKeyEnv?: string;
  stateDir?: string;
  servedName?: string;
  python?: string;
}

/** The package root (where worker/ lives), from this file: src/cli or dist/cli. */
export const PACKAGE_ROOT = resolve(import.meta.dirname, "../..");
export const WORKER_SRC = join(PACKAGE_ROOT, "worker", "src");

const DEVICES = ["auto", "cpu", "cuda"];
const DTYPES = ["auto", "float32", "bfloat16", "float16"];
const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
const LISTENING = /emlab-worker listening on (https?:\/\/\S+)/;

/** How the worker is started: the python, its arguments, its environment (key included). */
export interface WorkerLaunch {
  python: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The variable that holds the key the worker requires, when it requires one. */
  keyEnv?: string;
}

/** The command line as a launch (bad input: an InputError naming the option). */
export function workerLaunch(o: WorkerStartCliOptions, env: NodeJS.ProcessEnv = process.env): WorkerLaunch {
  if (!o.model) throw badOption("--model", "give the model directory (or hub id) to serve");
  if (o.device !== undefined && !DEVICES.includes(o.device))
    throw badOption("--device", `expected ${DEVICES.join(", ")}, got '${o.device}'`);
  if (o.dtype !== undefined && !DTYPES.includes(o.dtype))
    throw badOption("--dtype", `expected ${DTYPES.join(", ")}, got '${o.dtype}'`);
  const port = intOption("--port", o.port, 0);
  if (port > 65535) throw badOption("--port", `must be 0-65535, got '${o.port}'`);
  if (o.adapter !== undefined && !existsSync(o.adapter))
    throw badOption("--adapter", `no such directory: ${o.adapter}`);
  const args = ["-m", "emlab_worker", "--model", o.model, "--host", o.host, "--port", String(port)];
  if (o.adapter) args.push("--adapter", o.adapter);
  if (o.device) args.push("--device", o.device);
  if (o.dtype) args.push("--dtype", o.dtype);
  if (o.stateDir) args.push("--state-dir", o.stateDir);
  if (o.servedName) args.push("--served-name", o.servedName);
  const childEnv: NodeJS.ProcessEnv = {
    ...env,
    PYTHONPATH: [WORKER_SRC, env.PYTHONPATH].filter(Boolean).join(":"),
    // The listening line must reach us when it is printed, not when a buffer fills.
    PYTHONUNBUFFERED: "1",
  };
  let keyEnv: string | undefined;
  if (o.apiKeyEnv !== undefined) {
    const key = env[o.apiKeyEnv]?.trim();
    if (!key) throw badOption("--api-key-env", `environment variable ${o.apiKeyEnv} is not set or empty`);
    childEnv[HF_WORKER_KEY_ENV] = key;
    keyEnv = o.apiKeyEnv;
  } else if (env[HF_WORKER_KEY_ENV]?.trim()) keyEnv = HF_WORKER_KEY_ENV;
  else delete childEnv[HF_WORKER_KEY_ENV];
  const python = o.python ?? env.EMLAB_WORKER_PYTHON ?? "python3";
  return { python, args, env: childEnv, keyEnv };
}

/**
 * Which of the worker's Python packages `python` lacks (looked up without importing them: an
 * import of torch takes seconds). A python that does not run is an error saying so.
 */
export function missingPythonPackages(python: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const probe =
    "import importlib.util as u; print(','.join(m for m in ['torch', 'transformers', 'peft', 'safetensors'] if u.find_spec(m) is None))";
  return new Promise((done, fail) => {
    execFile(python, ["-c", probe], { env, timeout: 60_000, encoding: "utf8" }, (err, stdout) => {
      if (err) {
        const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "not found" : err.message;
        fail(
          new Error(
            `python '${python}' does not run (${why}): give one with --python PATH or EMLAB_WORKER_PYTHON`,
          ),
        );
        return;
      }
      done(stdout.trim() === "" ? [] : stdout.trim().split(","));
    });
  });
}

/** The served model's name from GET /health (no key needed), or undefined when it does not say. */
function servedName(url: string): Promise<string | undefined> {
  return new Promise((done) => {
    // agent false: no kept-alive socket that would hold the worker's shutdown up.
    const req = http.get(`${url}/health`, { timeout: 5000, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => {
        try {
          const model = (JSON.parse(text) as { model?: unknown }).model;
          done(typeof model === "string" ? model : undefined);
        } catch {
          done(undefined);
        }
      });
    });
    req.on("error", () => done(undefined));
    req.on("timeout", () => req.destroy());
  });
}

/** The study's model entry for this worker. */
export function studySnippet(url: string, model: string, keyEnv: string | undefined): string {
  const id = (model.split(/[\\/]/).filter(Boolean).at(-1) ?? "worker-model").replace(/[^A-Za-z0-9_.-]/g, "-");
  return [
    "models:",
    `  - id: ${id}`,
    "    provider: hf-worker",
    `    model: ${JSON.stringify(model)}`,
    `    base_url: ${url}`,
    ...(keyEnv ? [`    api_key_env: ${keyEnv}`] : []),
    "    roles: [target]",
  ].join("\n");
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

async function startWorker(o: WorkerStartCliOptions): Promise<number> {
  const launch = workerLaunch(o);
  if (!existsSync(join(WORKER_SRC, "emlab_worker")))
    throw new Error(`the worker's Python package is not at ${join(WORKER_SRC, "emlab_worker")}`);
  const missing = await missingPythonPackages(launch.python, launch.env);
  if (missing.length > 0)
    throw new Error(
      `python '${launch.python}' lacks ${missing.join(", ")}: install the worker's requirements with ` +
        `'${launch.python} -m pip install ${join(PACKAGE_ROOT, "worker")}' (or pass --python / EMLAB_WORKER_PYTHON for a python that has them)`,
    );
  if (!LOOPBACK.has(o.host) && !launch.keyEnv)
    process.stderr.write(
      `warning: listening on ${o.host} with no API key: anyone who can reach it may use the model (set ${HF_WORKER_KEY_ENV} or --api-key-env)\n`,
    );
  // Its own process group: a Ctrl-C at the terminal reaches the worker once, from us.
  const child = spawn(launch.python, launch.args, {
    env: launch.env,
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  const forward = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const handlers = SIGNALS.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  let announced = false;
  let pending = "";
  child.stdout.on("data", (chunk: Buffer) => {
    process.stdout.write(chunk);
    if (announced) return;
    pending += chunk.toString("utf8");
    const m = LISTENING.exec(pending);
    if (!m) {
      pending = pending.slice(-4096);
      return;
    }
    announced = true;
    const url = m[1].replace(/\/+$/, "");
    void servedName(url).then((name) => {
      const model = name ?? o.servedName ?? o.model!;
      const port = new URL(url).port;
      process.stderr.write(
        `\nworker ready: ${url} (model "${model}")\n` +
          `from another machine: ssh -N -L ${port}:127.0.0.1:${port} THIS_HOST, then use http://127.0.0.1:${port}\n` +
          `study model entry:\n${studySnippet(url, model, launch.keyEnv)}\n` +
          "Ctrl-C stops it\n",
      );
    });
  });
  const code = await new Promise<number>((done) => {
    child.on("error", (e) => {
      process.stderr.write(`error: could not start ${launch.python}: ${e.message}\n`);
      done(EXIT.failed);
    });
    child.on("exit", (exitCode, signal) => {
      if (exitCode !== null) done(exitCode);
      else done(signal === "SIGINT" ? EXIT.interrupted : EXIT.failed);
    });
  });
  for (const [s, h] of handlers) process.off(s, h);
  if (!announced && code !== 0)
    process.stderr.write(
      `error: the worker exited with code ${code} before it listened (its log is above)\n`,
    );
  return code;
}

export function registerWorkerCommand(program: Command): void {
  const worker = program
    .command("worker")
    .description("emlab's Python HF worker (PyTorch + transformers), for the hf-worker provider");
  worker
    .command("start")
    .description(
      "Serve a transformers model for emlab (chat, activations, logits, hook edits, LoRA jobs) over HTTP, on the machine that holds it.",
    )
    .option("--model <dir>", "model directory or hub id to serve")
    .option("--adapter <dir>", "PEFT LoRA adapter applied to the model")
    .option("--device <device>", "auto (cuda when available), cpu or cuda")
    .option("--dtype <dtype>", "auto (float32 on the CPU, bfloat16 on CUDA), float32, bfloat16 or float16")
    .option("--port <n>", "port (0 = any free port)", "8765")
    .option(
      "--host <host>",
      "address to listen on (other than loopback: anyone who can reach it may call it)",
      "127.0.0.1",
    )
    .option(
      "--api-key-env <name>",
      `require the Bearer key held in this environment variable (default: ${HF_WORKER_KEY_ENV} when set)`,
    )
    .option("--state-dir <dir>", "where training jobs, checkpoints and adapters are kept")
    .option("--served-name <name>", "the model name the worker answers to (default: --model)")
    .option(
      "--python <path>",
      "python with torch and transformers (default: EMLAB_WORKER_PYTHON, else python3)",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  $ emlab worker start --model Qwen/Qwen2.5-7B-Instruct --device cuda\n  $ EMLAB_WORKER_API_KEY=$(openssl rand -hex 16) emlab worker start --model ./my-model --port 8765\n\nSetup: pip install ./worker (torch, transformers, peft) in the python it runs.",
    )
    .action(command(async (raw: WorkerStartCliOptions) => startWorker(raw)));
}
