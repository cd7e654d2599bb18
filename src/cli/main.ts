import { Command, CommanderError } from "commander";
import { InputError } from "../config/load.ts";
import { loadPlugins } from "../study/plugins.ts";
import { registerCacheCommand } from "./cache.ts";
import { registerDatasetsCommand } from "./datasets.ts";
import { registerDemoCommand } from "./demo.ts";
import { registerEngineCommand } from "./engine.ts";
import { EXIT } from "./exit.ts";
import { registerRejudgeCommand } from "./rejudge.ts";
import { registerReportCommand } from "./report.ts";
import { registerRunCommand } from "./run.ts";
import { registerSaeCommand } from "./sae.ts";
import { registerServeCommand } from "./serve.ts";
import { registerStatusCommand } from "./status.ts";
import { registerVectorsCommand } from "./vectors.ts";
import { registerViewCommand } from "./view.ts";
import { registerWorkerCommand } from "./worker.ts";
import { registerWorldCommand } from "./world.ts";

/** Thin CLI: each command lives in its own file and calls into the libraries. */
const program = new Command();
program
  .name("emlab")
  .description("Emergent-misalignment research toolkit: studies, battery, judges, analysis, interp, reports.")
  .version("0.1.0")
  .showHelpAfterError()
  // Usage errors (unknown option, missing argument) are bad input like any other: exit 2.
  // Set before the commands are added, so each inherits it.
  .exitOverride()
  .option(
    "--plugin <module>",
    "import a module that adds experiments (repeatable; .ts or .js): see docs/experiments.md",
    (v: string, prev: string[]) => [...prev, v],
    [] as string[],
  )
  .hook("preAction", async () => {
    const plugins = program.opts<{ plugin: string[] }>().plugin;
    if (plugins.length === 0) return;
    try {
      await loadPlugins(plugins);
    } catch (e) {
      process.stderr.write(`${e instanceof InputError ? e.message : String(e)}\n`);
      process.exit(EXIT.badInput);
    }
  });

registerDemoCommand(program);
registerRunCommand(program);
registerStatusCommand(program);
registerReportCommand(program);
registerCacheCommand(program);
registerEngineCommand(program);
registerViewCommand(program);
registerWorldCommand(program);
registerSaeCommand(program);
registerDatasetsCommand(program);
registerRejudgeCommand(program);
registerServeCommand(program);
registerVectorsCommand(program);
registerWorkerCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (!(e instanceof CommanderError)) throw e;
  // Help and --version end with exit code 0; every usage error with 2.
  process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
}
