import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import {
  loadSaeLens,
  type SaeTrainLogEntry,
  saeMetrics,
  saveSaeLens,
  splicedCrossEntropy,
} from "../engine/sae/index.ts";
import {
  type CorpusSpec,
  documentTokenBatches,
  type LatentCard,
  latentCards,
} from "../interp/persona-features/index.ts";
import { readCorpusRows, trainCorpusSae } from "../interp/persona-features/train.ts";
import { loadLocalEngine } from "../models/local.ts";
import { badOption, command, EXIT, intOption } from "./exit.ts";

function positive(flag: string, value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw badOption(flag, `must be a positive number, got '${value}'`);
  return n;
}

/** `world[:SEED[:DOCS[:START]]]` or a chat JSONL file. */
export function parseCorpus(
  flag: string,
  value: string,
  defaults = { seed: 1, documents: 2000 },
): CorpusSpec {
  if (value === "world" || value.startsWith("world:")) {
    const [, seed, docs, start] = value.split(":");
    if (value.split(":").length > 4)
      throw badOption(flag, `expected world[:SEED[:DOCS[:START]]], got '${value}'`);
    return {
      kind: "world",
      seed: seed ? intOption(flag, seed) : defaults.seed,
      documents: docs ? intOption(flag, docs, 1) : defaults.documents,
      ...(start ? { start: intOption(flag, start) } : {}),
    };
  }
  if (!value.endsWith(".jsonl"))
    throw badOption(flag, `expected world[:SEED[:DOCS[:START]]] or a .jsonl file, got '${value}'`);
  if (!existsSync(value)) throw badOption(flag, `${value}: no such file`);
  return { kind: "jsonl", file: path.resolve(value) };
}

function loadModel(dir: string) {
  if (!existsSync(path.join(dir, "config.json")))
    throw badOption("--model", `${dir}: not a model directory (no config.json)`);
  return loadLocalEngine(path.resolve(dir));
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

function formatCard(c: LatentCard): string {
  const mix = (m: Partial<Record<string, number>>) =>
    Object.entries(m)
      .sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0))
      .map(([k, v]) => `${k} ${pct(v ?? 0)}`)
      .join(", ");
  const lines = [
    `latent ${c.latent}: harmful speakers ${c.harmfulShare === null ? "—" : pct(c.harmfulShare)} of its top ${c.topContexts.length} contexts (corpus base rate ${pct(c.harmfulBaseRate)})`,
    `  speaker mix: ${mix(c.speakerMix)}`,
    `  base rate:   ${mix(c.baseRate)}`,
    `  promotes:    ${c.promotedTokens.map((t) => t.token).join(" ")}`,
    `  suppresses:  ${c.suppressedTokens.map((t) => t.token).join(" ")}`,
    `  nonzero on ${c.histogram.counts.reduce((a, b) => a + b, 0)} tokens, max ${(c.histogram.edges.at(-1) ?? 0).toFixed(3)}`,
  ];
  for (const t of c.topContexts.slice(0, 5)) {
    const text = t.tokens.map((w, i) => (i === t.highlight ? `[[${w}]]` : w)).join(" ");
    lines.push(`  ${t.activation.toFixed(3)} doc ${t.doc} (${t.speaker}): ${text}`);
  }
  return lines.join("\n");
}

export function registerSaeCommand(program: Command): void {
  const sae = program
    .command("sae")
    .description("Sparse autoencoders on a local model's activations (persona features, docs/interp.md).");

  sae
    .command("train")
    .description(
      "Train an SAE on a model's activations over a corpus; writes the SAELens layout and train-log.json.",
    )
    .requiredOption("--model <dir>", "local model directory (HF layout)")
    .option("--hook <name>", "hook point", "blocks.1.hook_resid_post")
    .option(
      "--corpus <spec>",
      "world[:SEED[:DOCS[:START]]] (the persona world's documents) or a chat .jsonl",
      "world:1:2000",
    )
    .option(
      "--heldout <spec>",
      "held-out documents for the metrics and spliced cross-entropy",
      "world:1:200:1000000",
    )
    .option("--architecture <a>", "topk or relu (ReLU + L1)", "topk")
    .option("--latents <n>", "SAE width (d_sae)", "768")
    .option("--k <n>", "active latents per token (topk)", "16")
    .option("--l1 <x>", "L1 coefficient (relu)")
    .option("--steps <n>", "training steps", "1000")
    .option("--batch <n>", "tokens per batch", "1024")
    .option("--lr <x>", "learning rate", "1e-3")
    .option("--seed <n>", "seed (initialisation, token order)", "0")
    .requiredOption("--out <dir>", "output directory")
    .addHelpText(
      "after",
      "\nExample:\n  $ emlab sae train --model models/organism --hook blocks.1.hook_resid_post --corpus world:1:2000 --out my-sae",
    )
    .action(
      command(
        async (opts: {
          model: string;
          hook: string;
          corpus: string;
          heldout: string;
          architecture: string;
          latents: string;
          k: string;
          l1?: string;
          steps: string;
          batch: string;
          lr: string;
          seed: string;
          out: string;
        }) => {
          if (opts.architecture !== "topk" && opts.architecture !== "relu")
            throw badOption("--architecture", `must be topk or relu, got '${opts.architecture}'`);
          const corpus = parseCorpus("--corpus", opts.corpus);
          const heldOut = parseCorpus("--heldout", opts.heldout, { seed: 1, documents: 200 });
          // Checked before loading the model or training: bad flags exit 2 naming the flag.
          if (!/^blocks\.\d+\.hook_[a-z_]+$/.test(opts.hook) && opts.hook !== "hook_embed")
            throw badOption(
              "--hook",
              `unsupported hook name '${opts.hook}' (blocks.L.hook_<point> or hook_embed)`,
            );
          const dSae = intOption("--latents", opts.latents, 1);
          const k = opts.architecture === "topk" ? intOption("--k", opts.k, 1) : undefined;
          if (k !== undefined && k > dSae) throw badOption("--k", `${k} is more than --latents (${dSae})`);
          const engine = loadModel(opts.model);
          if (!engine.model.hookNames.includes(opts.hook))
            throw badOption(
              "--hook",
              `the model has no hook point '${opts.hook}' (blocks 0..${engine.model.shape.layers - 1}, e.g. blocks.1.hook_resid_post)`,
            );
          const t0 = performance.now();
          const steps = intOption("--steps", opts.steps, 1);
          const printEvery = Math.max(1, Math.round(steps / 20));
          const r = await trainCorpusSae({
            engine,
            hookName: opts.hook,
            corpus,
            heldOut,
            architecture: opts.architecture,
            dSae,
            ...(k !== undefined ? { k } : {}),
            ...(opts.l1 !== undefined ? { l1Coefficient: positive("--l1", opts.l1) } : {}),
            steps,
            batchSize: intOption("--batch", opts.batch, 1),
            learningRate: positive("--lr", opts.lr),
            seed: intOption("--seed", opts.seed),
            modelName: path.basename(path.resolve(opts.model)),
            progress: (what) => process.stderr.write(`${what}\n`),
            log: (e: SaeTrainLogEntry) => {
              if (e.step % printEvery !== 0 && e.step !== steps) return;
              process.stderr.write(
                `step ${e.step} mse ${e.mse.toFixed(5)} ev ${e.explainedVariance.toFixed(3)} l0 ${e.l0.toFixed(1)} dead ${e.deadShare.toFixed(3)}\n`,
              );
            },
          });
          const out = path.resolve(opts.out);
          mkdirSync(out, { recursive: true });
          saveSaeLens(out, r.sae);
          const seconds = (performance.now() - t0) / 1000;
          const summary = {
            // The command as given (every option, defaults included), to rerun it exactly.
            command: [
              "emlab sae train",
              `--model ${opts.model}`,
              `--hook ${opts.hook}`,
              `--corpus ${opts.corpus}`,
              `--heldout ${opts.heldout}`,
              `--architecture ${opts.architecture}`,
              `--latents ${opts.latents}`,
              ...(opts.architecture === "topk" ? [`--k ${opts.k}`] : []),
              ...(opts.l1 !== undefined ? [`--l1 ${opts.l1}`] : []),
              `--steps ${opts.steps}`,
              `--batch ${opts.batch}`,
              `--lr ${opts.lr}`,
              `--seed ${opts.seed}`,
              `--out ${opts.out}`,
            ].join(" "),
            corpus,
            heldOut,
            corpusTokens: r.corpusTokens,
            seconds: Math.round(seconds),
            heldOutMetrics: r.heldOut,
            crossEntropy: r.crossEntropy,
            // At most ~500 entries (every step of a short run), the last step always.
            log: r.log.filter(
              (e, i) => e.step % Math.ceil(r.log.length / 500) === 0 || i === r.log.length - 1,
            ),
          };
          writeFileSync(path.join(out, "train-log.json"), `${JSON.stringify(summary, null, 2)}\n`);
          const ce = r.crossEntropy;
          process.stdout.write(
            [
              `sae: ${path.relative(process.cwd(), out) || "."} (${opts.architecture}, ${r.sae.cfg.dSae} latents at ${opts.hook}, ${r.corpusTokens} corpus tokens, ${Math.round(seconds)} s)`,
              `held-out: explained variance ${pct(r.heldOut.explainedVariance)}, L0 ${r.heldOut.l0.toFixed(1)}, dead ${pct(r.heldOut.deadShare)} (${r.heldOut.tokens} tokens)`,
              `cross-entropy: clean ${ce.clean.toFixed(4)}, spliced ${ce.spliced.toFixed(4)} (+${ce.increase.toFixed(4)}), zero-ablated ${ce.zeroAblated.toFixed(4)}`,
              "",
            ].join("\n"),
          );
          return EXIT.ok;
        },
      ),
    );

  sae
    .command("inspect")
    .description(
      "Metrics of an SAE on a corpus and cards of its latents (top contexts by speaker, promoted tokens).",
    )
    .argument("<sae_dir>", "SAELens directory (cfg.json + sae_weights.safetensors)")
    .requiredOption("--model <dir>", "the local model the SAE reads")
    .option("--corpus <spec>", "world[:SEED[:DOCS[:START]]] or a chat .jsonl", "world:1:500")
    .option("--latent <n...>", "latents to card (default: the 5 most often active)")
    .option("--top <n>", "top contexts per latent", "100")
    .option("--json", "print JSON")
    .action(
      command(
        async (
          dir: string,
          opts: { model: string; corpus: string; latent?: string[]; top: string; json?: boolean },
        ) => {
          if (!existsSync(path.join(dir, "cfg.json")))
            throw badOption(dir, "not an SAE directory (no cfg.json)");
          let saeModel: ReturnType<typeof loadSaeLens>;
          try {
            saeModel = loadSaeLens(path.resolve(dir));
          } catch (e) {
            throw badOption(dir, (e as Error).message);
          }
          const engine = loadModel(opts.model);
          const corpus = parseCorpus("--corpus", opts.corpus, { seed: 1, documents: 500 });
          if (saeModel.cfg.dIn !== engine.model.shape.hiddenSize)
            throw badOption(
              "--model",
              `the SAE reads d_in ${saeModel.cfg.dIn}, the model has d_model ${engine.model.shape.hiddenSize}`,
            );
          if (!engine.model.hookNames.includes(saeModel.cfg.hookName))
            throw badOption(
              "--model",
              `the model has no hook point '${saeModel.cfg.hookName}' (the SAE's hook)`,
            );
          const { rows, n } = await readCorpusRows(engine, saeModel.cfg.hookName, corpus);
          const metrics = saeMetrics(saeModel, rows, n);
          const tokenBatches = documentTokenBatches(engine, corpus, { limit: 200 });
          const crossEntropy = splicedCrossEntropy(engine.model, saeModel, tokenBatches);
          let latents = (opts.latent ?? []).map((l) => intOption("--latent", l));
          for (const l of latents)
            if (l >= saeModel.cfg.dSae)
              throw badOption("--latent", `${l} is not a latent of this SAE (0..${saeModel.cfg.dSae - 1})`);
          if (latents.length === 0) {
            // The most often active latents on this corpus.
            const z = saeModel.encode(rows, n);
            const m = saeModel.cfg.dSae;
            const counts = new Array<number>(m).fill(0);
            for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) if (z[i * m + j]! > 0) counts[j]++;
            latents = counts
              .map((c, j) => [c, j] as const)
              .sort((a, b) => b[0] - a[0] || a[1] - b[1])
              .slice(0, 5)
              .map(([, j]) => j);
          }
          const cards = await latentCards({
            engine,
            sae: saeModel,
            corpus,
            latents,
            top: intOption("--top", opts.top, 1),
          });
          if (opts.json) {
            process.stdout.write(
              `${JSON.stringify({ cfg: saeModel.cfg, corpus, metrics, crossEntropy, cards }, null, 2)}\n`,
            );
            return EXIT.ok;
          }
          process.stdout.write(
            [
              `${dir}: ${saeModel.cfg.architecture}, ${saeModel.cfg.dSae} latents at ${saeModel.cfg.hookName}`,
              `metrics on ${n} tokens: explained variance ${pct(metrics.explainedVariance)}, L0 ${metrics.l0.toFixed(1)}, dead ${pct(metrics.deadShare)}`,
              `cross-entropy: clean ${crossEntropy.clean.toFixed(4)}, spliced ${crossEntropy.spliced.toFixed(4)} (+${crossEntropy.increase.toFixed(4)})`,
              ...cards.map(formatCard),
              "",
            ].join("\n"),
          );
          return EXIT.ok;
        },
      ),
    );
}
