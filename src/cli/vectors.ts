// `emlab vectors`: a finished run's persona directions as a llama.cpp / repeng control vector
// (`export`), SAE latents' decoder directions as one (`export-sae`), and what a control vector
// file holds (`inspect`).
//
// A run does not save its directions as files: results.json keeps their norms and the store
// keeps what made them (the answers' saved activations, interp/activations/<model>/alignment,
// and the judge's aligned / coherent scores). `export` recomputes them exactly as the run did
// (personaDirections with the thresholds and seed results.json records) and checks them
// against results.json's norms before writing.

import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { answerKey } from "../battery/stage.ts";
import { InputError } from "../config/load.ts";
import { readControlVector, writeControlVector } from "../engine/io/control-vector.ts";
import { ggufArchitecture } from "../engine/io/gguf.ts";
import { GgufError } from "../engine/io/gguf-format.ts";
import { readHfConfig } from "../engine/io/hf-config.ts";
import { saeLatentDirections, saeResidPostBlock } from "../engine/sae/directions.ts";
import type { SparseAutoencoder } from "../engine/sae/sae.ts";
import { loadSaeLens, SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME } from "../engine/sae/saelens.ts";
import { loadActivations } from "../interp/activations.ts";
import { type PersonaJudgement, personaDirections } from "../interp/directions.ts";
import { norm } from "../interp/vectors.ts";
import { loadRun } from "../report/load-run.ts";
import { RunStore } from "../runs/store.ts";
import { badOption, command, EXIT } from "./exit.ts";

export interface RunPersonaDirections {
  modelId: string;
  /** By block index, as the run computed them (mean misaligned − mean aligned, not normalised). */
  directions: Map<number, Float32Array>;
  /** Where the activations were read from, relative to the run directory. */
  activations: string;
  /** Answers per set after subsampling. */
  count: number;
  /** `controlvector.model_hint` from the model's config.json, when the run's model entry is a local directory. */
  modelHint: string | undefined;
}

const bad = (file: string, message: string) => new InputError([{ file, message }]);

/**
 * A finished run's persona directions for one model, recomputed from its saved activations
 * and judgments and checked against results.json (answer count and every layer's norm).
 */
export function runPersonaDirections(runDir: string, modelId: string): RunPersonaDirections {
  const run = loadRun(runDir, { samplesPerModel: 0 });
  const resultsFile = path.join(runDir, "results.json");
  const block = run.results.interp?.directions;
  if (!block) throw bad(resultsFile, "interp.directions: absent (the study computed no persona directions)");
  const entry = block.models[modelId];
  if (!entry)
    throw bad(
      resultsFile,
      `interp.directions.models: no model '${modelId}' (has ${Object.keys(block.models).join(", ") || "none"})`,
    );
  if (entry.skipped)
    throw bad(resultsFile, `interp.directions.models.${modelId}: skipped (${entry.skipped})`);
  const rel = run.results.interp?.activations[modelId]?.alignment;
  if (!rel) throw bad(resultsFile, `interp.activations.${modelId}.alignment: absent`);
  const judge = run.results.settings.judge?.model;
  if (!judge) throw bad(resultsFile, "settings.judge: the run had no judge, so no persona split");

  const ds = loadActivations(path.join(runDir, rel));
  const indexFile = path.join(runDir, rel, "activations.json");
  if (!ds.keys) throw bad(indexFile, "field keys: absent (which answer each row is)");
  const store = RunStore.open(runDir, { readonly: true });
  let judgements: PersonaJudgement[];
  let sourcePath: string | undefined;
  try {
    const scores = (metric: string) => {
      const out = new Map<string, number | null>();
      for (const j of store.judgments({ metric }))
        if (j.judge_model_id === judge) out.set(answerKey(j.request_id, j.sample_index), j.score);
      return out;
    };
    const aligned = scores("aligned");
    const coherent = scores("coherent");
    judgements = ds.keys.map((k) => ({ aligned: aligned.get(k) ?? null, coherent: coherent.get(k) ?? null }));
    sourcePath = store.getStudy()?.source_path ?? undefined;
  } finally {
    store.close();
  }
  const dirs = personaDirections(ds, judgements, {
    coherentAbove: block.coherent_above,
    alignedAbove: block.aligned_above,
    misalignedAtMost: block.misaligned_at_most,
    seed: block.seed,
  });
  // The store must still give what results.json reports (a later rejudge by the same judge
  // id, or edited activations, would not).
  const mismatch = (what: string) =>
    bad(
      resultsFile,
      `interp.directions.models.${modelId}: ${what}; the run store no longer gives the directions results.json reports`,
    );
  if (dirs.split.aligned.length !== entry.count)
    throw mismatch(`count ${entry.count}, recomputed ${dirs.split.aligned.length}`);
  for (const { layer, norm: want } of entry.layers) {
    const v = dirs.vectors.get(layer);
    if (!v) throw mismatch(`layer ${layer} is not in ${rel}`);
    const got = norm(v);
    if (Math.abs(got - want) > 1e-5 * Math.max(1, want))
      throw mismatch(`layer ${layer} norm ${want}, recomputed ${got}`);
  }
  return {
    modelId,
    directions: dirs.vectors,
    activations: rel,
    count: dirs.split.aligned.length,
    modelHint: localModelHint(run.storeModels, modelId, sourcePath),
  };
}

/** The GGUF architecture of a local model's config.json ("llama", "qwen2"), when it can be found. */
function localModelHint(
  models: { id: string; provider: string; model: string }[],
  modelId: string,
  studySource: string | undefined,
): string | undefined {
  const m = models.find((x) => x.id === modelId);
  if (m?.provider !== "local") return undefined;
  const candidates = path.isAbsolute(m.model)
    ? [m.model]
    : [studySource ? path.resolve(path.dirname(studySource), m.model) : undefined, path.resolve(m.model)];
  const dir = candidates.find((d) => d !== undefined && existsSync(path.join(d, "config.json")));
  return dir ? ggufArchitecture(readHfConfig(path.join(dir, "config.json"))) : undefined;
}

/** A control vector of SAE latents, with what the command reports about it. */
export interface SaeControlVector {
  block: number;
  /** scale · Σ unit(W_dec[l]) over the latents (what direction.{block} holds). */
  direction: Float32Array;
  hookName: string;
  /** `controlvector.model_hint` from the SAE's model_name when it is a local model directory. */
  modelHint: string | undefined;
}

/**
 * The control vector of an SAELens SAE's latents: one direction at the block whose output the
 * SAE reads. Bad input (exit 2) names the SAE's file: an SAE that does not load, a hook other
 * than blocks.L.hook_resid_post, block 0 (llama.cpp steers from block 1 on), bad latents.
 */
export function saeControlVector(saeDir: string, latents: number[], scale: number): SaeControlVector {
  const cfgFile = path.join(saeDir, SAE_CFG_FILENAME);
  let sae: SparseAutoencoder;
  try {
    sae = loadSaeLens(saeDir);
  } catch (e) {
    // loadSaeLens' messages start with the file they are about.
    const msg = (e as Error).message;
    const file = [cfgFile, path.join(saeDir, SAE_WEIGHTS_FILENAME)].find((f) => msg.startsWith(`${f}: `));
    throw file ? bad(file, msg.slice(file.length + 2)) : bad(saeDir, msg);
  }
  let block: number;
  try {
    block = saeResidPostBlock(sae.cfg);
  } catch (e) {
    throw new InputError([{ file: cfgFile, field: "metadata.hook_name", message: (e as Error).message }]);
  }
  if (block === 0)
    throw new InputError([
      {
        file: cfgFile,
        field: "metadata.hook_name",
        message: `"${sae.cfg.hookName}" is block 0's output; llama.cpp applies control vectors from block 1 on (it refuses direction.0)`,
      },
    ]);
  let directions: Map<number, Float32Array>;
  try {
    directions = saeLatentDirections(sae, latents, scale);
  } catch (e) {
    throw badOption("--latent", `${saeDir}: ${(e as Error).message}`);
  }
  return {
    block,
    direction: directions.get(block)!,
    hookName: sae.cfg.hookName,
    modelHint: saeModelHint(sae.cfg.modelName, saeDir),
  };
}

/** The GGUF architecture of the SAE's model_name when it names a local model directory (as given, or beside the SAE). */
function saeModelHint(modelName: string | undefined, saeDir: string): string | undefined {
  if (!modelName) return undefined;
  const candidates = path.isAbsolute(modelName)
    ? [modelName]
    : [path.resolve(modelName), path.resolve(saeDir, modelName)];
  const dir = candidates.find((d) => existsSync(path.join(d, "config.json")));
  return dir ? ggufArchitecture(readHfConfig(path.join(dir, "config.json"))) : undefined;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function parseLatents(values: string[]): number[] {
  if (values.length === 0) throw badOption("--latent", "give at least one latent index");
  return values.map((value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n) || n < 0)
      throw badOption("--latent", `expected a latent index (an integer >= 0), got '${value}'`);
    return n;
  });
}

function parseLayers(value: string): number[] {
  const layers = value.split(",").map((s) => Number(s.trim()));
  for (const l of layers)
    if (!Number.isInteger(l) || l < 1)
      throw badOption("--layers", `expected block indices >= 1 separated by commas, got '${value}'`);
  return layers;
}

export function registerVectorsCommand(program: Command): void {
  const vectors = program
    .command("vectors")
    .description(
      "Persona directions and SAE latents as llama.cpp control vectors (the GGUF layout repeng writes).",
    );

  vectors
    .command("export")
    .description("Write a finished run's persona directions of one model as a control vector GGUF.")
    .argument("<run-dir>", "run directory (with results.json and interp.directions)")
    .requiredOption("--model <id>", "model id whose directions to export")
    .option("--out <file>", "output file (default RUN_DIR/interp/control-vectors/<model>.gguf)")
    .option("--model-hint <arch>", "controlvector.model_hint (default: the local model's GGUF architecture)")
    .option("--layers <list>", "only these blocks, e.g. 8,12,16 (default: every block but 0)")
    .addHelpText(
      "after",
      [
        "",
        "direction.N is added to the output of block N (blocks.N.hook_resid_post); llama.cpp has",
        "no slot for block 0, so its direction is left out. Steering with the file at scale a",
        "equals the engine's steeringHooks(directions, a) at the same blocks.",
        "",
        "Example:",
        "  $ emlab vectors export runs/insecure --model insecure-ft",
        "  $ llama-cli -m model.gguf --control-vector-scaled runs/insecure/interp/control-vectors/insecure-ft.gguf:0.5",
      ].join("\n"),
    )
    .action(
      command(
        async (
          runDir: string,
          opts: { model: string; out?: string; modelHint?: string; layers?: string },
        ) => {
          const r = runPersonaDirections(runDir, opts.model);
          const hint = opts.modelHint ?? r.modelHint;
          if (!hint)
            throw badOption(
              "--model-hint",
              `model '${opts.model}' is not a local model directory with a config.json; give its architecture (e.g. llama, qwen2)`,
            );
          const wanted = opts.layers ? parseLayers(opts.layers) : undefined;
          const directions = new Map<number, Float32Array>();
          for (const l of wanted ?? [...r.directions.keys()].filter((b) => b >= 1)) {
            const v = r.directions.get(l);
            if (!v)
              throw badOption(
                "--layers",
                `block ${l} has no direction (the run has ${[...r.directions.keys()].join(", ")})`,
              );
            directions.set(l, v);
          }
          if (directions.size === 0)
            throw badOption("--layers", "no direction left to write (llama.cpp cannot steer block 0)");
          const out =
            opts.out ??
            path.join(runDir, "interp", "control-vectors", `${opts.model.replace(/[^\w.-]/g, "_")}.gguf`);
          mkdirSync(path.dirname(out), { recursive: true });
          writeControlVector(out, { modelHint: hint, directions });
          const skipped0 =
            !wanted && r.directions.has(0) ? " (block 0 left out: llama.cpp cannot steer it)" : "";
          process.stdout.write(
            `${out}: ${directions.size} direction(s) of '${opts.model}' at blocks ${[...directions.keys()].join(", ")}${skipped0}, model hint ${hint}, from ${r.activations} (${r.count} answers per set)\n`,
          );
          return EXIT.ok;
        },
      ),
    );

  vectors
    .command("export-sae")
    .description(
      "Write SAE latents' decoder directions as a control vector GGUF (an SAELens SAE at blocks.L.hook_resid_post).",
    )
    .requiredOption("--sae <dir>", "SAELens SAE directory (cfg.json + sae_weights.safetensors)")
    .option("--latent <n>", "latent index (repeat for several: their unit directions are summed)", collect)
    .option("--scale <x>", "multiply the direction by this (default 1: unit steering along one latent)")
    .option("--out <file>", "output file (default SAE_DIR/control-vector.latent-<n>[-<m>...].gguf)")
    .option(
      "--model-hint <arch>",
      "controlvector.model_hint (default: the GGUF architecture of the SAE's model_name, when that is a local model directory)",
    )
    .addHelpText(
      "after",
      [
        "",
        "direction.L = scale · Σ W_dec[l] / |W_dec[l]| over the latents, L the SAE's block. At",
        "llama.cpp scale a, one latent steers as the engine's latentSteerHook(sae, latent, a · scale).",
        "Only an SAE at blocks.L.hook_resid_post with L >= 1 gives a control vector.",
        "",
        "Example:",
        "  $ emlab vectors export-sae --sae saes/blocks.12 --latent 2042 --scale 8 --model-hint qwen2 --out toxic.gguf",
        "  $ emlab serve --model models/qwen2.5-0.5b --steer toxic.gguf --layer 12 --alpha 1",
      ].join("\n"),
    )
    .action(
      command(
        async (opts: {
          sae: string;
          latent?: string[];
          scale?: string;
          out?: string;
          modelHint?: string;
        }) => {
          const latents = parseLatents(opts.latent ?? []);
          const scaleText = opts.scale ?? "1";
          const scale = Number(scaleText);
          if (scaleText.trim() === "" || !Number.isFinite(scale) || scale === 0)
            throw badOption("--scale", `expected a non-zero number, got '${scaleText}'`);
          if (!existsSync(opts.sae)) throw bad(opts.sae, "no such SAE directory");
          const cv = saeControlVector(opts.sae, latents, scale);
          const hint = opts.modelHint ?? cv.modelHint;
          if (!hint)
            throw badOption(
              "--model-hint",
              "the SAE's model_name is not a local model directory with a config.json; give the model's architecture (e.g. llama, qwen2)",
            );
          const out = opts.out ?? path.join(opts.sae, `control-vector.latent-${latents.join("-")}.gguf`);
          mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
          writeControlVector(out, { modelHint: hint, directions: new Map([[cv.block, cv.direction]]) });
          process.stdout.write(
            `${out}: direction.${cv.block} (${cv.hookName}) = ${scale} · Σ unit decoder rows of latent(s) ${latents.join(", ")}, norm ${norm(cv.direction).toPrecision(6)}, model hint ${hint}\n`,
          );
          return EXIT.ok;
        },
      ),
    );

  vectors
    .command("inspect")
    .description("Show a control vector GGUF: model hint, layer count, and each block's norm.")
    .argument("<file>", "control vector .gguf")
    .option("--json", "print JSON")
    .action(
      command(async (file: string, opts: { json?: boolean }) => {
        if (!existsSync(file)) throw bad(file, "no such file");
        let cv: ReturnType<typeof readControlVector>;
        try {
          cv = readControlVector(file);
        } catch (e) {
          // A malformed file is bad input (exit 2); its message already names the file.
          if (!(e instanceof GgufError)) throw e;
          throw bad(file, e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message);
        }
        const layers = [...cv.directions].map(([block, v]) => ({ block, norm: norm(v) }));
        const dModel = cv.directions.values().next().value?.length ?? 0;
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify({ file, modelHint: cv.modelHint, layerCount: cv.layerCount, dModel, layers }, null, 2)}\n`,
          );
          return EXIT.ok;
        }
        const lines = [
          `file         ${file}`,
          `model hint   ${cv.modelHint}`,
          `layer count  ${cv.layerCount}`,
          `d_model      ${dModel}`,
          "",
          "block  norm",
          ...layers.map((l) => `${String(l.block).padEnd(6)} ${l.norm.toPrecision(6)}`),
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
        return EXIT.ok;
      }),
    );
}
