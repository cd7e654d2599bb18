import { setMaxListeners } from "node:events";
import type { Command } from "commander";
import { rejudgeRun } from "../rejudge/rejudge.ts";
import { command, EXIT } from "./exit.ts";
import { terminalProgress } from "./progress.ts";

export function registerRejudgeCommand(program: Command): void {
  program
    .command("rejudge")
    .description(
      "Judge a finished run's stored answers again with another judge: new judgments beside the old, no target model asked, and how the judges agree (docs/rejudge.md).",
    )
    .argument("<dir>", "run directory")
    .requiredOption("--judge <model-id>", "the new judge: a model id of --study, or of the run's study")
    .option(
      "--study <file>",
      "study file whose models hold the judge's entry (default: the run's stored study)",
    )
    .option("--experiments <names>", "comma-separated judged experiments (default: harmfulness,alignment)")
    .option("--resume", "continue a rejudge by this judge that was stopped (no judge call is made twice)")
    .option("--no-cache", "neither read nor write the response cache")
    .addHelpText(
      "after",
      "\nExample:\n  $ emlab rejudge runs/insecure --judge qwen-judge --study judges.yaml\n  $ emlab rejudge runs/insecure --judge qwen-judge --study judges.yaml --resume",
    )
    .action(
      command(
        async (
          dir: string,
          opts: { judge: string; study?: string; experiments?: string; resume?: boolean; cache: boolean },
        ) => {
          const controller = new AbortController();
          // Every in-flight request listens on the signal.
          setMaxListeners(0, controller.signal);
          const stop = () => controller.abort();
          process.once("SIGINT", stop);
          try {
            const r = await rejudgeRun({
              runDir: dir,
              judge: opts.judge,
              studyFile: opts.study,
              experiments: opts.experiments
                ?.split(",")
                .map((s) => s.trim())
                .filter(Boolean),
              resume: opts.resume,
              noCache: !opts.cache,
              signal: controller.signal,
              progress: terminalProgress(),
            });
            process.stdout.write(
              `${r.judge}: ${r.planned} judge request(s), ${r.added} new, ${r.cacheHits} from the cache; ${r.judgments} judgment(s); target requests unchanged: ${r.otherRequestsBefore === r.otherRequestsAfter}\n`,
            );
            if (r.interrupted) return EXIT.interrupted;
            if (!r.agreementFile) return EXIT.failed;
            process.stdout.write(`${r.agreementFile}\n`);
            return EXIT.ok;
          } finally {
            process.off("SIGINT", stop);
          }
        },
      ),
    );
}
