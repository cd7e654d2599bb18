import type { Command } from "commander";
import { checkRunDirForReading } from "../runs/lock.ts";
import { RunStore } from "../runs/store.ts";
import { command, EXIT } from "./exit.ts";

export function registerStatusCommand(program: Command): void {
  program
    .command("status")
    .description("Show a run's progress: samples stored, retries, failures, tokens and cost.")
    .argument("<dir>", "run directory")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nExample:\n  $ emlab status runs/insecure\n  $ emlab status runs/insecure --json | jq .retries",
    )
    .action(
      command(async (dir: string, opts: { json?: boolean }) => {
        checkRunDirForReading(dir);
        const store = RunStore.open(dir, { readonly: true });
        try {
          const study = store.getStudy();
          const counts = store.counts();
          const byModel = store.countsByModel();
          const failed = store.failedRequests();
          if (opts.json) {
            process.stdout.write(
              `${JSON.stringify({ study: study?.name ?? null, ...counts, byModel, failed }, null, 2)}\n`,
            );
            return EXIT.ok;
          }
          const lines = [
            `study      ${study?.name ?? "(none)"}`,
            `samples    ${counts.completions}/${counts.samplesExpected} (${counts.cachedCompletions} from cache)`,
            `requests   ${counts.requestsDone} done, ${counts.requestsFailed} failed, ${counts.requests} planned`,
            `calls      ${counts.calls} (${counts.retries} retries, ${counts.failedCalls} failed)`,
            `tokens     ${counts.promptTokens} prompt + ${counts.completionTokens} completion`,
            `cost       $${counts.costUsd.toFixed(4)}`,
            "",
            "model                          samples        retries  failed",
            ...byModel.map(
              (m) =>
                `${m.model_id.padEnd(30)} ${`${m.completions}/${m.expected}`.padEnd(14)} ${String(m.retries).padEnd(8)} ${m.failed}`,
            ),
          ];
          if (failed.length > 0) {
            lines.push("", "failed requests:");
            for (const f of failed) lines.push(`  ${f.model_id} ${f.item_id}: ${f.error}`);
          }
          process.stdout.write(`${lines.join("\n")}\n`);
          return EXIT.ok;
        } finally {
          store.close();
        }
      }),
    );
}
