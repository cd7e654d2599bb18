#!/usr/bin/env node
// `emlab rejudge` as a standalone command for tests (until src/cli/main.ts registers it):
// the same commander command, its parsing, exit codes and signals, in a child process.
import { register } from "tsx/esm/api";

register();
const { Command } = await import("commander");
const { registerRejudgeCommand } = await import("../../src/cli/rejudge.ts");
const program = new Command("emlab");
registerRejudgeCommand(program);
await program.parseAsync(process.argv);
