#!/usr/bin/env node
// `npm test`: type check, lint, layer rules (.dependency-cruiser.cjs), then the vitest suite.
// Ends with one plain line, `N passed, N failed, N skipped`, that CI reads; a test file
// that fails to load counts as a failure, so a broken import cannot pass silently.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const bin = (name) => path.join(import.meta.dirname, "..", "node_modules", ".bin", name);
const step = (name, cmd, args) => {
  process.stdout.write(`\n> ${name}\n`);
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  return r.status ?? 1;
};

if (step("tsc --noEmit", bin("tsc"), ["--noEmit"]) !== 0) process.exit(1);
if (step("biome ci .", bin("biome"), ["ci", "."]) !== 0) process.exit(1);
if (step("layer rules (depcruise)", bin("depcruise"), ["src", "--config", ".dependency-cruiser.cjs"]) !== 0)
  process.exit(1);

const out = path.join(mkdtempSync(path.join(os.tmpdir(), "emlab-test-")), "vitest.json");
const code = step("vitest run", bin("vitest"), [
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${out}`,
  ...process.argv.slice(2),
]);
let summary;
try {
  const r = JSON.parse(readFileSync(out, "utf8"));
  const brokenFiles = r.testResults.filter(
    (f) => f.status === "failed" && f.assertionResults.length === 0,
  ).length;
  summary = `${r.numPassedTests} passed, ${r.numFailedTests + brokenFiles} failed, ${r.numPendingTests + r.numTodoTests} skipped`;
} catch {
  summary = "0 passed, 1 failed"; // vitest died before writing its report
}
process.stdout.write(`\n${summary}\n`);
process.exit(code);
