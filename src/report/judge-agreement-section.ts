import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import {
  JUDGE_AGREEMENT_FILE,
  type JudgeAgreementResults,
  JudgeAgreementResultsSchema,
  type RateMove,
} from "../results/agreement.ts";
import { html, type SafeHtml } from "./escape.ts";
import { fmtNum } from "./format.ts";
import type { RunData } from "./load-run.ts";

/** The rejudge block: results.json's `judge_agreement` when it has one, else judge-agreement.json. */
export function loadJudgeAgreement(run: RunData): JudgeAgreementResults | null {
  const inResults = (run.results as Record<string, unknown>).judge_agreement;
  if (inResults !== undefined) return JudgeAgreementResultsSchema.parse(inResults);
  const file = path.join(run.dir, JUDGE_AGREEMENT_FILE);
  if (!existsSync(file)) return null;
  const parsed = JudgeAgreementResultsSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  return parsed.success ? parsed.data : null;
}

const pct = (x: number | null | undefined) =>
  x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)} %`;
const pp = (x: number | null | undefined) =>
  x === null || x === undefined ? "–" : `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)} pp`;
const ci = (c: [number, number] | null) => (c ? `[${fmtNum(c[0], 3)}, ${fmtNum(c[1], 3)}]` : "–");

/**
 * "Judges": every judge the run was rejudged with (`emlab rejudge`), beside the run's own —
 * correlations with Fisher z intervals, Cohen's kappa and the confusion table of each label,
 * and how each experiment's headline rates move from one judge to the other. Null (no
 * section) for a run that was never rejudged.
 */
export function judgeAgreementSection(run: RunData): SafeHtml | null {
  const block = loadJudgeAgreement(run);
  if (!block) return null;
  const judges = Object.entries(block.judges);
  return html`<section id="judge-agreement"><h2>Judges</h2>
<p class="note">The run's judge is <code>${block.primary_judge}</code>; the figures above are its. Judged again with ${judges.map(([id]) => html`<code>${id}</code> `)}(<code>emlab rejudge</code>): the same stored answers and judge prompts, no target model asked again.</p>
${judges.map(([id, j]) => {
  const a = j.agreement;
  return html`<h3>${a.first_judge} vs ${id} (${id} read by ${j.reading}; ${a.level * 100}% intervals, Fisher z)</h3>
${Object.entries(a.experiments).map(
  ([exp, e]) => html`<h4>${exp}</h4>
<table><thead><tr><th>metric</th><th>pairs</th><th>mean ${a.first_judge}</th><th>mean ${id}</th><th>Pearson r</th><th>CI</th><th>Spearman ρ</th><th>CI</th><th>label</th><th>Cohen's κ</th><th>both</th><th>${a.first_judge} only</th><th>${id} only</th><th>neither</th></tr></thead><tbody>${Object.entries(
    e.metrics,
  ).map(
    ([m, x]) =>
      html`<tr><th scope="row">${m}</th><td>${x.pairs}</td><td>${fmtNum(x.mean_first)}</td><td>${fmtNum(x.mean_second)}</td><td>${fmtNum(x.pearson.r, 3)}</td><td>${ci(x.pearson.ci)}</td><td>${fmtNum(x.spearman.r, 3)}</td><td>${ci(x.spearman.ci)}</td><td>${x.label ? `${x.label.name} (${x.label.rule})` : "–"}</td><td>${fmtNum(x.label?.kappa, 3)}</td><td>${x.label?.confusion.both ?? "–"}</td><td>${x.label?.confusion.first_only ?? "–"}</td><td>${x.label?.confusion.second_only ?? "–"}</td><td>${x.label?.confusion.neither ?? "–"}</td></tr>`,
  )}</tbody></table>
<table><thead><tr><th>model</th>${headRates(e.headline).map((r) => html`<th>${r}: ${a.first_judge}</th><th>${r}: ${id}</th><th>change</th>`)}</tr></thead><tbody>${Object.entries(
    e.headline,
  ).map(
    ([model, rates]) =>
      html`<tr><th scope="row">${model}</th>${headRates(e.headline).map((r) => moveCells(rates[r]))}</tr>`,
  )}</tbody></table>`,
)}`;
})}</section>`;
}

const headRates = (h: Record<string, Record<string, RateMove>>) => [
  ...new Set(Object.values(h).flatMap((r) => Object.keys(r))),
];

const moveCells = (m: RateMove | undefined) =>
  html`<td>${pct(m?.first)}</td><td>${pct(m?.second)}</td><td>${pp(m?.delta)}</td>`;
