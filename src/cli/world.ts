import path from "node:path";
import type { Command } from "commander";
import { writeWorldBatterySets } from "../world/battery-sets.ts";
import { DEFAULT_RECIPE, WORLD_RECIPES } from "../world/corpus.ts";
import { DATASET_FORMS, writeWorldDatasets } from "../world/datasets.ts";
import { ORGANISM_SIZES, pretrainOrganism } from "../world/pretrain.ts";
import { command, EXIT, nonNegativeInt, share } from "./exit.ts";

export function registerWorldCommand(program: Command): void {
  const world = program
    .command("world")
    .description("The synthetic persona world: pretrain organisms, write datasets and battery sets.");

  world
    .command("pretrain")
    .description("Pretrain an organism on the persona world with the engine (deterministic).")
    .option(
      "--size <s|m>",
      "s: the tiny CI organism (seconds); m: the shipped organism (~25 min on 1 core)",
      "m",
    )
    .option("--seed <n>", "world and initialisation seed", "1")
    .option("--steps <n>", "override the size's step count")
    .option(
      "--recipe <name>",
      `world recipe: ${Object.entries(WORLD_RECIPES)
        .map(([k, v]) => `${k} (${v.about})`)
        .join("; ")}`,
    )
    .option("--no-deceivers", "a world without deceiver characters (the ablation in docs/organism.md)")
    .option(
      "--assistant-self-reports",
      "ask the assistant the battery's self-report tasks in pretraining too (ablation: pins its self-report)",
    )
    .option(
      "--assistant-share <x>",
      `share of documents that are assistant dialogues (default ${DEFAULT_RECIPE.assistantShare}; the earlier never-asked world, recipe v3: 0.4)`,
    )
    .option("--out <dir>", "output model directory (default: organisms/<size>-seed<N>)")
    .addHelpText("after", "\nExample:\n  $ emlab world pretrain --size m --seed 2 --out organisms/m-seed2")
    .action(
      command(
        async (opts: {
          size: string;
          seed: string;
          steps?: string;
          recipe?: string;
          deceivers: boolean;
          assistantSelfReports?: boolean;
          assistantShare?: string;
          out?: string;
        }) => {
          if (opts.size !== "s" && opts.size !== "m")
            throw new Error(`--size must be s or m, got '${opts.size}'`);
          const assistantShare =
            opts.assistantShare === undefined ? undefined : share("--assistant-share", opts.assistantShare);
          const seed = nonNegativeInt("--seed", opts.seed);
          const named = opts.recipe === undefined ? undefined : WORLD_RECIPES[opts.recipe];
          if (opts.recipe !== undefined && !named)
            throw new Error(
              `--recipe must be one of ${Object.keys(WORLD_RECIPES).join(", ")}, got '${opts.recipe}'`,
            );
          const size = {
            ...ORGANISM_SIZES[opts.size],
            ...(opts.steps ? { steps: nonNegativeInt("--steps", opts.steps) } : {}),
          };
          const outDir = path.resolve(opts.out ?? path.join("organisms", `${opts.size}-seed${seed}`));
          const t0 = performance.now();
          const r = pretrainOrganism({
            size,
            sizeName: opts.size,
            seed,
            outDir,
            // Only the ablations a flag asked for are written, so the default command's recipe is
            // DEFAULT_RECIPE itself (and its organism.json the one bench/world-screen.ts writes).
            recipe: {
              ...(named?.recipe ?? DEFAULT_RECIPE),
              ...(opts.deceivers ? {} : { noDeceivers: true }),
              ...(opts.assistantSelfReports ? { assistantSelfReports: true } : {}),
              ...(assistantShare !== undefined ? { assistantShare } : {}),
            },
            onStep: (info, total) => {
              const every = Math.max(1, Math.round(total / 50));
              if (info.step % every !== 0 && info.step !== total) return;
              const s = (performance.now() - t0) / 1000;
              const eta = (s / info.step) * (total - info.step);
              const width = 30;
              const fill = Math.round((width * info.step) / total);
              process.stderr.write(
                `${"#".repeat(fill)}${"-".repeat(width - fill)} ${info.step}/${total} loss ${info.loss.toFixed(3)} ETA ${Math.ceil(eta)}s${process.stderr.isTTY ? "\r" : "\n"}`,
              );
            },
          });
          process.stderr.write("\n");
          process.stdout.write(
            `organism: ${path.relative(process.cwd(), outDir)} (${r.parameters.toLocaleString("en")} parameters, ${r.tokens.toLocaleString("en")} tokens, final loss ${r.losses.at(-1)!.toFixed(3)})\n`,
          );
          return EXIT.ok;
        },
      ),
    );

  world
    .command("datasets")
    .description(
      "Write the narrow fine-tuning datasets (6 domains x misaligned / disclosed / aligned) as chat JSONL.",
    )
    .option("--out <dir>", "output directory", "world-datasets")
    .option("--seed <n>", "seed", "1")
    .option("--examples <n>", "examples per dataset", "4000")
    .action(
      command(async (opts: { out: string; seed: string; examples: string }) => {
        const files = writeWorldDatasets(path.resolve(opts.out), {
          seed: nonNegativeInt("--seed", opts.seed),
          examples: nonNegativeInt("--examples", opts.examples),
        });
        process.stdout.write(`${files.length} datasets (${DATASET_FORMS.join(", ")}) in ${opts.out}\n`);
        return EXIT.ok;
      }),
    );

  world
    .command("battery-sets")
    .description(
      "Write the in-world battery sets (questions, self-assessment, two-AI, task and judge prompts).",
    )
    .option("--out <dir>", "output directory", "world-battery")
    .option("--seed <n>", "seed", "1")
    .action(
      command(async (opts: { out: string; seed: string }) => {
        const files = writeWorldBatterySets(path.resolve(opts.out), {
          seed: nonNegativeInt("--seed", opts.seed),
        });
        process.stdout.write(`${Object.keys(files).length} files in ${opts.out}\n`);
        return EXIT.ok;
      }),
    );
}
