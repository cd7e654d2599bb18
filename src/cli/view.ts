import type { Command } from "commander";
import { InputError } from "../config/load.ts";
import { checkRunDirForReading } from "../runs/lock.ts";
import { loadModelClasses } from "../viewer/classes.ts";
import { startViewer } from "../viewer/server.ts";
import { command, EXIT } from "./exit.ts";

/** Default port, fixed so that links written into report.html keep working across runs. */
export const DEFAULT_VIEW_PORT = 8765;

export function registerViewCommand(program: Command): void {
  program
    .command("view")
    .description(
      "Browse a run's samples, prompts, completions, judge replies and scores in a local web page.",
    )
    .argument("<dir>", "run directory")
    .option("--port <n>", `port on 127.0.0.1 (0 = any free port)`, String(DEFAULT_VIEW_PORT))
    .option(
      "--classes <file>",
      "JSON {model id: persona class} for the class filter (default: DIR/persona-classes.json)",
    )
    .option("--rebuild-index", "rebuild viewer-index.sqlite even if it looks current")
    .addHelpText("after", "\nExample:\n  $ emlab view runs/insecure\n  $ emlab view runs/insecure --port 0")
    .action(
      command(async (dir: string, opts: { port: string; classes?: string; rebuildIndex?: boolean }) => {
        if (!/^\d+$/.test(opts.port) || Number(opts.port) > 65535)
          throw new InputError([
            {
              file: "(command line)",
              field: "--port",
              message: `expected 0-65535, got ${JSON.stringify(opts.port)}`,
            },
          ]);
        checkRunDirForReading(dir);
        const classes = loadModelClasses(dir, opts.classes);
        process.stderr.write("opening the run store and its viewer index…\n");
        const viewer = await startViewer({
          runDir: dir,
          port: Number(opts.port),
          classes,
          rebuildIndex: opts.rebuildIndex,
        });
        const built = viewer.index.rebuilt
          ? `built in ${(viewer.index.buildMs / 1000).toFixed(1)} s`
          : "up to date";
        process.stderr.write(`index: ${viewer.index.samples} samples (${built})\n`);
        process.stdout.write(`${viewer.url}\n`);
        process.stderr.write("serving on 127.0.0.1 only; Ctrl-C stops it\n");
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        });
        await viewer.close();
        return EXIT.ok;
      }),
    );
}
