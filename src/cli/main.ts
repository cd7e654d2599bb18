import { Command } from "commander";
import { registerCacheCommand } from "./cache.ts";
import { registerDemoCommand } from "./demo.ts";
import { registerEngineCommand } from "./engine.ts";
import { registerReportCommand } from "./report.ts";
import { registerRunCommand } from "./run.ts";
import { registerStatusCommand } from "./status.ts";
import { registerViewCommand } from "./view.ts";
import { registerWorldCommand } from "./world.ts";

/** Thin CLI: each command lives in its own file and calls into the libraries. */
const program = new Command();
program
  .name("emlab")
  .description("Emergent-misalignment research toolkit: studies, battery, judges, analysis, interp, reports.")
  .version("0.1.0")
  .showHelpAfterError();

registerDemoCommand(program);
registerRunCommand(program);
registerStatusCommand(program);
registerReportCommand(program);
registerCacheCommand(program);
registerEngineCommand(program);
registerViewCommand(program);
registerWorldCommand(program);

await program.parseAsync(process.argv);
