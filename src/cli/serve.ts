import { basename, resolve } from "node:path";
import type { Command } from "commander";
import { InputError, type InputProblem } from "../config/load.ts";
import type { LayerSpec } from "../interp/interventions.ts";
import type { EditPositions, ServeEdits, ServeModelSpec } from "../serve/served-model.ts";
import {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_SERVE_PORT,
  type ServeOptions,
  startServer,
} from "../serve/server.ts";
import { command, EXIT } from "./exit.ts";

/** What Commander hands the action (strings as typed). */
export interface ServeCliOptions {
  model: string[];
  lora: string[];
  chatTemplate?: string;
  steer?: string;
  layer?: string;
  alpha?: string;
  ablate?: string;
  ablateLayer?: string;
  positions: string;
  port: string;
  host: string;
  apiKey?: string;
  apiKeyEnv?: string;
  maxBodyBytes: string;
  maxQueued: string;
}

const repeat = (v: string, prev: string[]) => [...prev, v];

function layerSpec(option: string, raw: string, problems: InputProblem[]): LayerSpec {
  if (raw === "all") return "all";
  const parts = raw.split(",").map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) {
    problems.push({
      file: "(command line)",
      field: option,
      message: `expected a block index, a list (2,3) or all, got '${raw}'`,
    });
    return [];
  }
  const ls = parts.map(Number);
  return ls.length === 1 ? ls[0] : ls;
}

function wholeNumber(
  option: string,
  raw: string,
  min: number,
  max: number,
  problems: InputProblem[],
): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max)
    problems.push({
      file: "(command line)",
      field: option,
      message: `expected a whole number ${min}-${max}, got '${raw}'`,
    });
  return n;
}

/**
 * The command line as ServeOptions (bad input: an InputError naming each option). The key is
 * read here, from --api-key or the variable --api-key-env names; it goes nowhere but the server.
 */
export function serveOptions(o: ServeCliOptions, env: NodeJS.ProcessEnv = process.env): ServeOptions {
  const problems: InputProblem[] = [];
  const bad = (field: string, message: string) => problems.push({ file: "(command line)", field, message });
  if (o.model.length === 0)
    bad("--model", "give at least one model directory (--model DIR or --model NAME=DIR)");
  const models: ServeModelSpec[] = o.model.map((m) => {
    const eq = m.indexOf("=");
    const dir = eq > 0 ? m.slice(eq + 1) : m;
    const name = eq > 0 ? m.slice(0, eq) : basename(resolve(dir));
    if (dir === "") bad("--model", `'${m}' names no directory`);
    return { name, dir, ...(o.chatTemplate ? { chatTemplate: o.chatTemplate } : {}) };
  });
  for (const l of o.lora) {
    const eq = l.indexOf("=");
    const target =
      eq > 0 ? models.find((m) => m.name === l.slice(0, eq)) : models.length === 1 ? models[0] : undefined;
    if (!target) {
      bad(
        "--lora",
        eq > 0 ? `no --model named '${l.slice(0, eq)}'` : "with several models, write --lora NAME=ADAPTER",
      );
      continue;
    }
    target.adapter = eq > 0 ? l.slice(eq + 1) : l;
  }
  const edits: ServeEdits = {};
  if (!["all", "assistant", "prompt"].includes(o.positions))
    bad("--positions", `expected all, assistant or prompt, got '${o.positions}'`);
  edits.positions = o.positions as EditPositions;
  if (o.steer) {
    if (o.layer === undefined) bad("--layer", "--steer needs --layer (a block, a list, or all)");
    if (o.alpha === undefined) bad("--alpha", "--steer needs --alpha (the steering coefficient)");
    const alpha = Number(o.alpha);
    if (o.alpha !== undefined && !Number.isFinite(alpha))
      bad("--alpha", `expected a number, got '${o.alpha}'`);
    edits.steer = { file: o.steer, layers: layerSpec("--layer", o.layer ?? "all", problems), alpha };
  } else if (o.layer !== undefined || o.alpha !== undefined)
    bad("--layer", "--layer and --alpha go with --steer");
  if (o.ablate)
    edits.ablate = {
      file: o.ablate,
      ...(o.ablateLayer !== undefined
        ? { layers: layerSpec("--ablate-layer", o.ablateLayer, problems) }
        : {}),
    };
  else if (o.ablateLayer !== undefined) bad("--ablate-layer", "--ablate-layer goes with --ablate");
  let apiKey = o.apiKey;
  if (o.apiKeyEnv) {
    if (apiKey) bad("--api-key-env", "give --api-key or --api-key-env, not both");
    apiKey = env[o.apiKeyEnv];
    if (!apiKey) bad("--api-key-env", `environment variable ${o.apiKeyEnv} is not set or empty`);
  }
  if (apiKey !== undefined && apiKey.trim() === "") bad("--api-key", "the key is empty");
  const port = wholeNumber("--port", o.port, 0, 65535, problems);
  const maxBodyBytes = wholeNumber("--max-body-bytes", o.maxBodyBytes, 1, 2 ** 31, problems);
  const maxQueued = wholeNumber("--max-queued", o.maxQueued, 1, 1e6, problems);
  if (problems.length > 0) throw new InputError(problems);
  return { models, edits, host: o.host, port, apiKey, maxBodyBytes, maxQueued };
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description(
      "Serve local models (optionally LoRA-adapted, steered or ablated) over the OpenAI API: /v1/models, /v1/chat/completions, /v1/completions.",
    )
    .option(
      "--model <dir|name=dir>",
      "model directory to serve (repeatable; the name defaults to the folder's)",
      repeat,
      [],
    )
    .option(
      "--lora <adapter|name=adapter>",
      "PEFT LoRA adapter merged into the model (repeatable with several models)",
      repeat,
      [],
    )
    .option("--chat-template <file>", ".jinja chat template used instead of each model directory's")
    .option(
      "--steer <vector-file>",
      "add alpha · v to the residual stream (.safetensors layer.<i> tensors, .json, or a llama.cpp control vector .gguf)",
    )
    .option("--layer <l>", "block(s) to steer at: 3, 2,3 or all")
    .option("--alpha <a>", "steering coefficient")
    .option("--ablate <vector-file>", "project this direction out of the residual stream")
    .option("--ablate-layer <l>", "block(s) to ablate at (default: the file's layers, or all for one vector)")
    .option("--positions <where>", "positions the edits apply to: all, assistant or prompt", "all")
    .option(
      "--host <host>",
      "address to listen on (other than loopback: anyone who can reach it may call it)",
      "127.0.0.1",
    )
    .option("--port <n>", "port (0 = any free port)", String(DEFAULT_SERVE_PORT))
    .option("--api-key <key>", "require this Bearer key (visible to ps: prefer --api-key-env)")
    .option("--api-key-env <name>", "require the Bearer key held in this environment variable")
    .option("--max-body-bytes <n>", "largest request body accepted", String(DEFAULT_MAX_BODY_BYTES))
    .option("--max-queued <n>", "requests that may wait for the engine before 429s", "256")
    .addHelpText(
      "after",
      "\nExamples:\n  $ emlab serve --model models/organism\n  $ emlab serve --model organism=models/organism --steer runs/x/directions.safetensors --layer 2 --alpha 4 --port 8001\n  $ OPENAI_BASE_URL=http://127.0.0.1:8000/v1 promptfoo eval ...",
    )
    .action(
      command(async (raw: ServeCliOptions) => {
        const opts = serveOptions(raw);
        if (!LOOPBACK.has(opts.host ?? "127.0.0.1") && !opts.apiKey)
          process.stderr.write(
            `warning: listening on ${opts.host} with no API key: anyone who can reach it may use it\n`,
          );
        process.stderr.write(`loading ${opts.models.map((m) => m.dir).join(", ")}…\n`);
        const server = await startServer(opts);
        for (const m of server.models) {
          const edits = m.edits.map(
            (e) =>
              `${e.kind} ${e.file} @ ${e.layers.join(",")}${e.alpha !== undefined ? ` α=${e.alpha}` : ""}`,
          );
          process.stderr.write(
            `model ${m.name}: ${m.dir}${m.adapter ? ` + ${m.adapter}` : ""}${edits.length ? ` (${edits.join("; ")})` : ""}\n`,
          );
        }
        process.stdout.write(`${server.url}/v1\n`);
        process.stderr.write("Ctrl-C stops it (requests in flight finish first)\n");
        await new Promise<void>((done) => {
          const stop = () => {
            process.stderr.write("stopping: finishing requests in flight…\n");
            // A second signal while draining exits at once.
            process.once("SIGINT", () => process.exit(EXIT.interrupted));
            process.once("SIGTERM", () => process.exit(EXIT.interrupted));
            done();
          };
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        });
        await server.close();
        return EXIT.ok;
      }),
    );
}
