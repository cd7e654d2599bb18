import { Command } from "commander";
import { registerCacheCommand } from "./cache.ts";
import { registerEngineCommand } from "./engine.ts";
import { registerRunCommand } from "./run.ts";
import { registerStatusCommand } from "./status.ts";

/** Thin CLI: each command lives in its own file and calls into the libraries. */
const program = new Command();
program
  .name("emlab")
  .description("Emergent-misalignment research toolkit: studies, battery, judges, analysis, interp, reports.")
  .version("0.1.0")
  .showHelpAfterError();

registerRunCommand(program);
registerStatusCommand(program);
registerCacheCommand(program);
registerEngineCommand(program);

await program.parseAsync(process.argv);
