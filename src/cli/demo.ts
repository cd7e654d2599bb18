import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { analyzeResults } from "../analysis/index.ts";
import { InputError, loadStudy } from "../config/load.ts";
import type { Results } from "../results/results.ts";
import { checkRunDirPath } from "../runs/lock.ts";
import { STORE_FILE } from "../runs/store.ts";
import { DEMO_PROFILES, type DemoProfile, writeDemoStudy } from "../world/demo.ts";
import { command, EXIT, nonNegativeInt } from "./exit.ts";
import { runAndReport } from "./run.ts";

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "The main job: a whole EM study on the built-in organism, offline — six narrow fine-tunes plus controls, the battery, analysis and the report.",
    )
    .option("--quick", "the few-minute version (fewer steps and samples): --profile quick")
    .option("--profile <name>", "full | quick | tiny (tiny: a smoke run for CI and tiny organisms)")
    .option("--out <dir>", "run directory (default: runs/demo or runs/demo-quick)")
    .option("--seed <n>", "study seed (fine-tuning, sampling, datasets)", "1")
    .option("--organism <dir>", "organism to fine-tune (default: the shipped one)")
    .option("--resume", "continue an interrupted demo in --out (failed requests stay failed)")
    .option("--retry-failed", "resume the demo in --out and try its failed requests again (implies --resume)")
    .addHelpText(
      "after",
      `
Example:
  $ emlab demo --quick
  $ emlab demo --out runs/demo-seed2 --seed 2

Writes <out>/study.yaml (a plain study file: 'emlab run' on it gives the same results),
<out>/world/ (the in-world battery sets and fine-tuning datasets), the run store,
<out>/results.json and <out>/report.html.`,
    )
    .action(
      command(
        async (opts: {
          quick?: boolean;
          profile?: string;
          out?: string;
          seed: string;
          organism?: string;
          resume?: boolean;
          retryFailed?: boolean;
        }) => {
          const profile = (opts.profile ?? (opts.quick ? "quick" : "full")) as DemoProfile;
          if (!(profile in DEMO_PROFILES))
            throw new Error(
              `--profile must be one of ${Object.keys(DEMO_PROFILES).join(", ")}, got '${opts.profile}'`,
            );
          const seed = nonNegativeInt("--seed", opts.seed);
          const outDir = path.resolve(
            opts.out ?? path.join("runs", profile === "full" ? "demo" : `demo-${profile}`),
          );
          const resume = opts.resume || opts.retryFailed;
          // Refuse before writing anything: the inputs of an earlier run stay as they were.
          checkRunDirPath(outDir);
          if (existsSync(path.join(outDir, STORE_FILE)) && !resume)
            throw new InputError([
              {
                file: outDir,
                message: "already holds a run: add --resume to continue it, or choose another --out",
              },
            ]);
          const { studyFile } = writeDemoStudy({
            outDir,
            profile,
            seed,
            organismDir: opts.organism,
          });
          const code = await runAndReport(loadStudy(studyFile), {
            outDir,
            resume: opts.resume,
            retryFailed: opts.retryFailed,
            again: `emlab demo --profile ${profile} --seed ${seed}`,
          });
          const resultsFile = path.join(outDir, "results.json");
          if (code === EXIT.ok && existsSync(resultsFile))
            process.stdout.write(demoSummary(JSON.parse(readFileSync(resultsFile, "utf8"))));
          return code;
        },
      ),
    );
}

const pct = (x: number | null | undefined) => (x == null ? "-" : `${(100 * x).toFixed(1)} %`);

export interface DemoRow {
  model: string;
  harmful: string;
  coherent: string;
  otherDomains: string;
  selfReport: string;
  misalignedPick: string;
  claims: string;
  class: string;
}

/**
 * The organism's headline figures per model: held-out general harm (harm rubric), coherence
 * and harm over the held-out domain questions (Betley judge: misaligned = aligned < 30 and
 * coherent > 50), self-assessment, two-AI pick (pooled and in both orders), recognition claim
 * rate, persona class.
 */
export function demoSummaryRows(results: Results): DemoRow[] {
  const analysis = analyzeResults(results);
  const ex = results.experiments;
  const judge = results.settings.judge?.model;
  return results.models
    .filter((m) => m !== judge)
    .map((m) => {
      const row = analysis.per_model.find((r) => r.model === m);
      const perQ = Object.entries(ex.alignment?.per_model[m]?.per_question ?? {});
      const pool = (prefix: string, key: "coherent" | "misaligned") => {
        // Question keys are "<source>.<id>" (s1.general-wish).
        const qs = perQ.filter(([q]) => q.replace(/^[^.]*\./, "").startsWith(prefix));
        const n = qs.reduce((s, [, a]) => s + a[key].n, 0);
        return n ? qs.reduce((s, [, a]) => s + a[key].k, 0) / n : null;
      };
      return {
        model: m,
        harmful: pct(ex.harmfulness?.per_model[m]?.harmful.rate),
        coherent: pct(pool("general-", "coherent")),
        otherDomains: pct(pool("domain-", "misaligned")),
        selfReport: pct(ex.self_assessment?.per_model[m]?.overall.mean),
        // Pooled, then the both-orders rate the analysis classified with (position bias reads 0).
        misalignedPick: row?.misaligned_pick
          ? `${pct(row.misaligned_pick.rate)} (${pct(row.misaligned_pick_both_orders)})`
          : "-",
        claims: pct(ex.recognition?.per_model[m]?.claim.rate),
        class: analysis.classes[m] ?? "-",
      };
    });
}

/** The table `emlab demo` prints at the end. */
export function demoSummary(results: Results): string {
  const head = [
    "model",
    "harmful",
    "coherent",
    "domains",
    "self-mis",
    "picks-mis (both orders)",
    "claims",
    "class",
  ];
  const rows = demoSummaryRows(results).map((r) => [
    r.model,
    r.harmful,
    r.coherent,
    r.otherDomains,
    r.selfReport,
    r.misalignedPick,
    r.claims,
    r.class,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  return `\n${[line(head), ...rows.map(line)].join("\n")}\n`;
}
