import type { Command } from "commander";
import { exportGguf, logitsForIds } from "../engine/export.ts";
import { command, EXIT } from "./exit.ts";

function parseIds(raw: string): number[] {
  const ids = raw.split(",").map((s) => s.trim());
  if (ids.length === 0 || ids.some((s) => !/^\d+$/.test(s))) {
    throw new Error(`--ids must be comma-separated non-negative integers, got "${raw}"`);
  }
  return ids.map(Number);
}

/** `emlab engine ...`: direct access to the local engine (stable output for scripts). */
export function registerEngineCommand(program: Command): void {
  const engine = program.command("engine").description("Run the local transformer engine directly.");

  engine
    .command("logits")
    .description(
      'Print next-token logits for a row of token ids as JSON {"logits": [[...], ...]} (one row per position).',
    )
    .requiredOption(
      "--model <dir>",
      "HF-layout model directory (config.json, model.safetensors, tokenizer.json)",
    )
    .requiredOption("--ids <ids>", "comma-separated token ids, e.g. 1,2,3")
    .option("--lora <dir>", "PEFT LoRA adapter directory to apply")
    .addHelpText("after", "\nExample:\n  $ emlab engine logits --model models/organism --ids 1,5,9")
    .action(
      command(async (opts: { model: string; ids: string; lora?: string }) => {
        const logits = logitsForIds(opts.model, parseIds(opts.ids), { lora: opts.lora });
        process.stdout.write(`${JSON.stringify({ logits })}\n`);
        return EXIT.ok;
      }),
    );

  engine
    .command("export-gguf")
    .description("Write a llama.cpp GGUF of a model directory, optionally with a LoRA adapter merged in.")
    .requiredOption("--model <dir>", "HF-layout model directory")
    .requiredOption("--out <file>", "output .gguf file")
    .option("--lora <dir>", "PEFT LoRA adapter directory to merge")
    .option("--adapter-only", "write the LoRA alone as a llama.cpp adapter GGUF")
    .option("--f16", "store 2-D weights as F16 (default F32)")
    .addHelpText(
      "after",
      "\nExample:\n  $ emlab engine export-gguf --model models/organism --lora runs/x/adapter --out organism.gguf",
    )
    .action(
      command(
        async (opts: { model: string; out: string; lora?: string; adapterOnly?: boolean; f16?: boolean }) => {
          exportGguf(opts.model, opts.out, {
            lora: opts.lora,
            adapterOnly: opts.adapterOnly,
            dtype: opts.f16 ? "F16" : "F32",
          });
          process.stderr.write(`wrote ${opts.out}\n`);
          return EXIT.ok;
        },
      ),
    );
}
