#!/usr/bin/env node
// Compares two results.json files: every field of BEFORE must hold the same value in AFTER
// (deep, exact: numbers compared as written); fields only AFTER has are listed as added.
// With --report REPORT.html, also checks that the report draws AFTER's analysis block: every
// correlation row (x, y, models, Pearson r and Spearman rho as the report formats them).
// Exit 0 when nothing of BEFORE changed (and the report matches), 1 otherwise.
//
//   node scripts/compare-results.mjs runs/before/results.json runs/after/results.json \
//     --report runs/after/report.html
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const reportAt = args.indexOf("--report");
const reportFile = reportAt >= 0 ? args.splice(reportAt, 2)[1] : undefined;
const [beforeFile, afterFile] = args;
if (!beforeFile || !afterFile) {
  console.error("usage: compare-results.mjs BEFORE.json AFTER.json");
  process.exit(2);
}
const read = (f) => JSON.parse(readFileSync(f, "utf8"));
const before = read(beforeFile);
const after = read(afterFile);

const changed = [];
const added = [];
let compared = 0;
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
function walk(a, b, at) {
  if (isObject(a) && isObject(b)) {
    for (const k of Object.keys(a)) {
      if (!(k in b)) changed.push(`${at}.${k}: missing after`);
      else walk(a[k], b[k], `${at}.${k}`);
    }
    for (const k of Object.keys(b)) if (!(k in a)) added.push(`${at}.${k}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) changed.push(`${at}: ${a.length} items before, ${b.length} after`);
    for (let i = 0; i < Math.min(a.length, b.length); i++) walk(a[i], b[i], `${at}[${i}]`);
    return;
  }
  compared++;
  if (JSON.stringify(a) !== JSON.stringify(b))
    changed.push(`${at}: ${JSON.stringify(a)} before, ${JSON.stringify(b)} after`);
}
walk(before, after, "$");
console.log(`${compared} values of ${beforeFile} compared with ${afterFile}`);
console.log(`added: ${added.length ? added.join(", ") : "nothing"}`);
if (changed.length) {
  console.log(`changed: ${changed.length}`);
  for (const c of changed.slice(0, 40)) console.log(`  ${c}`);
  process.exit(1);
}
console.log("changed: nothing");
if (reportFile) {
  const page = readFileSync(reportFile, "utf8");
  const fmt = (x) => (x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(3));
  const rows = after.analysis?.correlations ?? [];
  const missing = rows.filter(
    (c) =>
      !page.includes(
        `<th scope="row">${c.x}</th><td>${c.y}</td><td>${c.n}</td><td>${fmt(c.pearson?.r)}</td>`,
      ) ||
      (c.spearman && !page.includes(`<td>${fmt(c.spearman.r)}</td>`)),
  );
  const shown = rows
    .filter((c) => c.pearson)
    .map((c) => `${c.x}~${c.y} r=${fmt(c.pearson.r)} rho=${fmt(c.spearman?.r)}`);
  console.log(
    `report: ${rows.length - missing.length}/${rows.length} correlations of the analysis block drawn (${shown.join("; ")})`,
  );
  if (rows.length === 0 || missing.length) process.exit(1);
}
