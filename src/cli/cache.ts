import type { Command } from "commander";
import { defaultCacheDir, ResponseCache } from "../runs/cache.ts";
import { command, EXIT } from "./exit.ts";

export function registerCacheCommand(program: Command): void {
  const cache = program
    .command("cache")
    .description("Manage the response cache shared by all runs (EMLAB_CACHE_DIR, default ~/.cache/emlab).");
  cache
    .command("clear")
    .description("Delete every cached response.")
    .addHelpText("after", "\nExample:\n  $ emlab cache clear")
    .action(
      command(async () => {
        const dir = defaultCacheDir();
        const n = ResponseCache.clear(dir);
        process.stdout.write(`cleared ${n} cached response(s) from ${dir}\n`);
        return EXIT.ok;
      }),
    );
  cache
    .command("path")
    .description("Print where the cache lives.")
    .addHelpText("after", "\nExample:\n  $ emlab cache path")
    .action(
      command(async () => {
        process.stdout.write(`${defaultCacheDir()}\n`);
        return EXIT.ok;
      }),
    );
}
