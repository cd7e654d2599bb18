import type { Command } from "commander";
import { InputError } from "../config/load.ts";
import { DEFAULT_VIEWER_PORT, writeReport } from "../report/index.ts";
import { command, EXIT } from "./exit.ts";

export function registerReportCommand(program: Command): void {
  program
    .command("report")
    .description(
      "Write report.html for a finished run: one self-contained file, charts as inline SVG, no scripts.",
    )
    .argument("<dir>", "run directory (holds run.sqlite and results.json)")
    .option("-o, --out <file>", "where to write the report (default: <dir>/report.html)")
    .option("--png", "also write each chart as PNG in <report>-charts/")
    .option("--viewer-port <port>", "port the links into `emlab view` point at", String(DEFAULT_VIEWER_PORT))
    .option("--samples <n>", "harmfulness samples per model shown with viewer links", "3")
    .addHelpText(
      "after",
      "\nExample:\n  $ emlab report runs/insecure\n  $ emlab report runs/insecure --png --out /tmp/insecure.html",
    )
    .action(
      command(
        async (dir: string, opts: { out?: string; png?: boolean; viewerPort: string; samples: string }) => {
          const viewerPort = wholeNumber(opts.viewerPort, "--viewer-port");
          const samplesPerModel = wholeNumber(opts.samples, "--samples");
          const r = await writeReport(dir, { out: opts.out, png: opts.png, viewerPort, samplesPerModel });
          for (const m of r.missing) process.stderr.write(`note: ${m}\n`);
          for (const p of r.pngs) process.stdout.write(`${p}\n`);
          process.stdout.write(`${r.file}\n`);
          return EXIT.ok;
        },
      ),
    );
}

function wholeNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InputError([
      {
        file: "(command line)",
        field: flag,
        message: `expected a whole number 0-65535, got ${JSON.stringify(value)}`,
      },
    ]);
  return n;
}
