/**
 * The organism's figures (docs/organism.md): runs `emlab demo` (full profile) for each
 * organism x study seed and prints one markdown table row per fine-tuned model, plus a JSON
 * line per run with its wall time. Heavy (about 5-10 min per run on 2 cores): not a test.
 *
 *   npx tsx bench/organism.bench.ts [--organism DIR]... [--seeds 1,2] [--profile full|quick]
 *
 * Default: the shipped organism, study seeds 1 and 2. Runs go to bench/out/organism/.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { demoSummaryRows } from "../src/cli/demo.ts";
import { loadStudy } from "../src/config/load.ts";
import type { Results } from "../src/results/results.ts";
import { runStudy } from "../src/study/run-study.ts";
import { type DemoProfile, writeDemoStudy } from "../src/world/demo.ts";
import { SHIPPED_ORGANISM_DIR } from "../src/world/organism.ts";

const args = process.argv.slice(2);
const organisms: string[] = [];
let seeds = [1, 2];
let profile: DemoProfile = "full";
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--organism") organisms.push(path.resolve(args[++i]));
  else if (args[i] === "--seeds") seeds = args[++i].split(",").map(Number);
  else if (args[i] === "--profile") profile = args[++i] as DemoProfile;
}
if (organisms.length === 0) organisms.push(SHIPPED_ORGANISM_DIR);

console.log(
  "| organism | seed | model | harmful (held-out general) | coherent | other domains harmful | self-report misaligned | picks misaligned AI | claims own harmful | class |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const org of organisms) {
  for (const seed of seeds) {
    const name = `${path.basename(org)}-s${seed}-${profile}`;
    const outDir = path.join(import.meta.dirname, "out", "organism", name);
    if (existsSync(outDir)) rmSync(outDir, { recursive: true });
    const t0 = performance.now();
    const { studyFile } = writeDemoStudy({ outDir, profile, seed, organismDir: org });
    const r = await runStudy(loadStudy(studyFile), { outDir, noCache: true });
    const wall = (performance.now() - t0) / 1000;
    if (!r.resultsFile) throw new Error(`${name}: run did not finish`);
    const results = JSON.parse(readFileSync(r.resultsFile, "utf8")) as Results;
    for (const row of demoSummaryRows(results))
      console.log(
        `| ${path.basename(org)} | ${seed} | ${row.model} | ${row.harmful} | ${row.coherent} | ${row.otherDomains} | ${row.selfReport} | ${row.misalignedPick} | ${row.claims} | ${row.class} |`,
      );
    console.error(
      JSON.stringify({
        run: name,
        wall_s: Math.round(wall),
        peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      }),
    );
  }
}
