import { setMaxListeners } from "node:events";
import path from "node:path";
import type { Command } from "commander";
import { type LoadedStudy, loadStudy } from "../config/load.ts";
import { type RunSummary, runStudy } from "../study/run-study.ts";
import { command, EXIT } from "./exit.ts";
import { terminalProgress } from "./progress.ts";

export function registerRunCommand(program: Command): void {
  program
    .command("run")
    .description("Run a study: plan every request, call the models, store every answer.")
    .argument("<study>", "study file (YAML)")
    .option("--out <dir>", "run directory (default: runs/<study name>)")
    .option(
      "--resume",
      "continue the run in --out, doing only the missing work (failed requests stay failed)",
    )
    .option("--retry-failed", "resume the run in --out and try its failed requests again (implies --resume)")
    .option("--no-cache", "neither read nor write the response cache")
    .addHelpText(
      "after",
      `
Example:
  $ emlab run studies/insecure.yaml --out runs/insecure
  $ emlab run studies/insecure.yaml --out runs/insecure --resume         # after a crash or Ctrl-C
  $ emlab run studies/insecure.yaml --out runs/insecure --retry-failed   # after exit 1: ask the failed ones again

Exit codes: 0 ok, 1 some requests failed (the run stops at the step that has them and
writes no results.json; --retry-failed tries them again), 2 bad input, 130 interrupted.`,
    )
    .action(
      command(
        async (
          studyFile: string,
          opts: { out?: string; resume?: boolean; retryFailed?: boolean; cache: boolean },
        ) => {
          const loaded = loadStudy(studyFile);
          const outDir = path.resolve(opts.out ?? path.join("runs", loaded.study.name));
          return runAndReport(loaded, {
            outDir,
            resume: opts.resume,
            retryFailed: opts.retryFailed,
            cache: opts.cache,
            again: `emlab run ${studyFile}`,
          });
        },
      ),
    );
}

/**
 * Runs a loaded study with a progress bar and Ctrl-C handling, then writes the report; prints
 * where results and report are and how to resume. Returns the exit code (shared by `emlab demo`).
 */
export async function runAndReport(
  loaded: LoadedStudy,
  opts: { outDir: string; resume?: boolean; retryFailed?: boolean; cache?: boolean; again: string },
): Promise<number> {
  const { outDir } = opts;
  const abort = new AbortController();
  // Every request in flight listens to the run's signal (a judge may have 64 at once): not a leak.
  setMaxListeners(0, abort.signal);
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write("\nstopping: finishing the store; press Ctrl-C again to quit at once\n");
    abort.abort();
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigint);
  try {
    const r = await runStudy(loaded, {
      outDir,
      resume: opts.resume,
      retryFailed: opts.retryFailed,
      noCache: opts.cache === false,
      signal: abort.signal,
      progress: terminalProgress(),
      report: true,
    });
    const rel = path.relative(process.cwd(), outDir) || ".";
    if (r.interrupted) {
      process.stderr.write(
        `interrupted: ${r.samplesDone}/${r.samplesTotal} samples stored in ${rel}\n` +
          `continue with: ${opts.again} --out ${rel} --resume\n`,
      );
      return EXIT.interrupted;
    }
    process.stdout.write(`${r.samplesDone}/${r.samplesTotal} samples stored in ${rel}\n`);
    if (r.incomplete) {
      process.stderr.write(incompleteMessage(r.incomplete, rel, opts.again));
      return EXIT.failed;
    }
    if (r.resultsFile) {
      process.stdout.write(`results: ${path.relative(process.cwd(), r.resultsFile)}\n`);
      if (r.reportFile) process.stdout.write(`report: ${path.relative(process.cwd(), r.reportFile)}\n`);
    }
    if (r.failedRequests > 0) {
      process.stderr.write(
        `${r.failedRequests} request(s) failed: see 'emlab status ${rel}'\n` +
          `retry them with: ${opts.again} --out ${rel} --retry-failed\n`,
      );
      return EXIT.failed;
    }
    return EXIT.ok;
  } finally {
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigint);
  }
}

/** What an incomplete run says: which step, how many failed requests, what did not run, how to go on. */
export function incompleteMessage(
  inc: NonNullable<RunSummary["incomplete"]>,
  rel: string,
  again: string,
): string {
  const notRun = inc.notRun.length
    ? `; step${inc.notRun.length > 1 ? "s" : ""} ${inc.notRun.join(", ")} not run (they read its answers)`
    : "";
  const what = inc.stage ? `the interp stage (${inc.stage})` : `step ${inc.step} of ${inc.steps}`;
  return (
    `incomplete: ${what} ended with ${inc.failed} failed request(s)${notRun}; results.json not written\n` +
    `see why: emlab status ${rel}\n` +
    `retry them with: ${again} --out ${rel} --retry-failed\n`
  );
}
