import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type Analysis, analyzeResults } from "../analysis/index.ts";
import { InterpResultsSchema } from "../results/interp.ts";
import type { Results } from "../results/results.ts";
import {
  crossRatingSpec,
  type ErrorByActual,
  harmVsSelfSpec,
  predictionErrorSpec,
  type RateBar,
  rateBarsSpec,
  type ScatterPoint,
} from "./chart-specs.ts";
import { html, type SafeHtml } from "./escape.ts";
import { experimentReport, interpReport } from "./experiment-report.ts";
import type { Rate } from "./format.ts";
import { interpCharts, interpResultsSection } from "./interp-section.ts";
import { judgeAgreementSection } from "./judge-agreement-section.ts";
import { loadRun, type RunData } from "./load-run.ts";
import { type Chart, chartMarkup, chartPng, renderChart } from "./render-chart.ts";
import {
  EXPERIMENTS,
  type ExperimentName,
  experimentTable,
  keyFigures,
  methods,
  missingReason,
  reportedModels,
  sampleLinks,
} from "./sections.ts";
import { classRule, statisticsSection } from "./statistics-section.ts";
import { REPORT_CSS } from "./style.ts";

export const REPORT_FILE = "report.html";
/** Port the viewer links point at: the default of `emlab view` (DEFAULT_VIEW_PORT in src/cli/view.ts). */
export const DEFAULT_VIEWER_PORT = 8765;

export interface ReportOptions {
  /** Where report.html goes (default: RUN_DIR/report.html). */
  out?: string;
  /** Also write each chart as PNG next to the report, in `<report name>-charts/` (default: the study's report.png). */
  png?: boolean;
  viewerPort?: number;
  /** Harmfulness samples per model shown with viewer links. */
  samplesPerModel?: number;
}

export interface BuiltReport {
  html: string;
  charts: Chart[];
  /** Experiments with no figures and why ("two_ai: not run in this study"). */
  missing: string[];
}

/** Builds report.html in memory from a loaded run. */
export async function buildReport(run: RunData, opts: ReportOptions = {}): Promise<BuiltReport> {
  const { results } = run;
  const models = reportedModels(results);
  let analysis: Analysis | null = null;
  let analysisError: string | null = null;
  try {
    // results.json carries the analysis emlab run computed; an older one is analyzed here.
    analysis = results.analysis ?? analyzeResults(results);
  } catch (e) {
    // The figures still render; the page says why the statistics are absent.
    analysisError = (e as Error).message;
  }
  const t = analysis?.options.thresholds;
  const cuts = { harm: t?.harmful_rate ?? 0.5, self: t?.self_assessment ?? 0.5 };
  const charts = [
    ...(await experimentCharts(results, personaPoints(analysis, models), cuts)),
    ...(await interpCharts(results.interp)),
  ];
  const byName = new Map(charts.map((c) => [c.name, c]));
  const figure = (name: string): SafeHtml | null => {
    const c = byName.get(name);
    return c
      ? html`<figure id="chart-${c.name}">${chartMarkup(c)}<figcaption>${c.title}</figcaption></figure>`
      : null;
  };

  const missing: string[] = [];
  const experimentSections = EXPERIMENTS.map(([name, heading]) => {
    const why = missingReason(run, name);
    if (why) {
      // `generate` is plain sampling, not part of the battery: only mention it when configured.
      if (name !== "generate" || why !== "not run in this study") missing.push(`${name}: ${why}`);
      return name === "generate" && why === "not run in this study"
        ? null
        : html`<section id="exp-${name}" class="missing"><h2>${heading}</h2><p class="missing-note">${name}: ${why}.</p></section>`;
    }
    return html`<section id="exp-${name}"><h2>${heading}</h2>${experimentTable(results, name)}${figure(chartFor(name))}</section>`;
  });

  // Experiments beyond the built-in battery (registered plugins), in results order.
  const builtin = new Set<string>(EXPERIMENTS.map(([n]) => n));
  const extra = Object.keys(results.experiments).filter(
    (n) => !builtin.has(n) && results.experiments[n] !== undefined,
  );
  const extraSections = extra.map((name) => {
    const r = experimentReport(name);
    const body = r.render(results.experiments[name], results);
    return html`<section id="exp-${name}" class="plugin"><h2>${r.heading}</h2>${body ?? html`<p class="missing-note">${name}: no figures.</p>`}</section>`;
  });

  const title = run.study?.report?.title ?? `emlab report: ${results.study}`;
  const viewerPort = opts.viewerPort ?? DEFAULT_VIEWER_PORT;
  const ran = [
    ...EXPERIMENTS.filter(([n]) => results.experiments[n] !== undefined).map(([n]) => n),
    ...extra,
  ];
  const body = html`
<header><h1>${title}</h1>
<p class="lead">Run <code>${path.resolve(run.dir)}</code> · study <code>${results.study}</code> · seed ${results.settings.seed} · models with figures: ${reportedModels(results).join(", ") || "none"}</p>
<nav>${[["summary", "summary"], ...ran.map((n) => [`exp-${n}`, n]), ["statistics", "statistics"], ["samples", "samples"], ["interp", "interp"], ["methods", "methods"]].map(([id, label]) => html`<a href="#${id}">${label}</a> `)}</nav>
</header>
<main>
<section id="summary"><h2>Summary</h2>
<p>Experiments with results: ${ran.length ? ran.join(", ") : "none"}.</p>
${missing.length ? html`<p class="missing-note">Missing: ${missing.join("; ")}.</p>` : ""}
${keyFigures(results, analysis)}
<p class="note">Rates are shown as percent with Wilson 95% intervals and counts. ${analysis ? `Persona class — ${classRule(analysis)}` : ""}</p>
${figure("harm-vs-self") ?? html`<p class="missing-note">Harm vs self-assessment: needs harmfulness (or alignment) and self_assessment results.</p>`}
</section>
${experimentSections}
${extraSections}
${judgeAgreementSection(run) ?? ""}
<section id="statistics"><h2>Statistics</h2>${
    analysis
      ? statisticsSection(analysis, models)
      : html`<p class="missing-note">statistics: the analysis failed (${analysisError}).</p>`
  }</section>
<section id="samples"><h2>Samples behind the figures</h2>
<p class="note">The most harmful outputs of each model as the judge scored them, shown as text. Links open the sample in the transcript viewer; they work while <code>emlab view ${run.dir} --port ${viewerPort}</code> runs.</p>
${sampleLinks(run, viewerPort)}
</section>
<section id="interp"><h2>Interpretability</h2>${interpSection(run, figure)}</section>
<section id="methods"><h2>Methods</h2>${methods(run)}</section>
</main>
<footer><p>Made by emlab from results.json and run.sqlite. Self-contained: no scripts, no network.</p></footer>`;

  return { html: page(title, body), charts, missing };
}

/** Reads RUN_DIR, writes report.html (and PNGs with `png`); returns what was written. */
export async function writeReport(
  dir: string,
  opts: ReportOptions = {},
): Promise<{ file: string; pngs: string[]; missing: string[]; charts: number }> {
  const run = loadRun(dir, { samplesPerModel: opts.samplesPerModel });
  const report = await buildReport(run, opts);
  const file = opts.out ?? path.join(dir, REPORT_FILE);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, report.html);
  const pngs: string[] = [];
  // --png on the command line, else the study's `report.png`.
  if (opts.png ?? run.study?.report?.png ?? false) {
    const pngDir = path.join(path.dirname(file), `${path.basename(file, ".html")}-charts`);
    mkdirSync(pngDir, { recursive: true });
    for (const c of report.charts) {
      const p = path.join(pngDir, `${c.name}.png`);
      writeFileSync(p, chartPng(c));
      pngs.push(p);
    }
  }
  return { file, pngs, missing: report.missing, charts: report.charts.length };
}

const chartFor = (name: ExperimentName): string =>
  name === "score_prediction"
    ? "prediction-error"
    : name === "cross_rating"
      ? "cross-rating"
      : `bars-${name}`;

function bars<T>(perModel: Record<string, T>, pick: (m: T) => Rate): RateBar[] {
  return Object.entries(perModel).flatMap(([model, m]) => {
    const r = pick(m);
    return r.rate === null || r.n === 0
      ? []
      : [{ model, rate: r.rate, low: r.ci95?.low ?? r.rate, high: r.ci95?.high ?? r.rate, n: r.n }];
  });
}

/** Every chart the results support, rendered to SVG; charts without data are skipped. */
/** Models placed on the harm × self-report plane: those with both figures. */
function personaPoints(analysis: Analysis | null, models: string[]): ScatterPoint[] {
  if (!analysis) return [];
  return analysis.per_model.flatMap((r) =>
    models.includes(r.model) && r.harm_level !== null && r.self_report_index !== null
      ? [{ model: r.model, harm: r.harm_level, self: r.self_report_index, class: r.class }]
      : [],
  );
}

async function experimentCharts(
  results: Results,
  persona: ScatterPoint[],
  cuts: { harm: number; self: number },
): Promise<Chart[]> {
  const e = results.experiments;
  const jobs: Array<Promise<Chart>> = [];
  const rateChart = (name: ExperimentName, title: string, y: string, rows: RateBar[]) => {
    if (rows.length) jobs.push(renderChart(`bars-${name}`, title, rateBarsSpec(title, y, rows)));
  };
  if (persona.length)
    jobs.push(
      renderChart(
        "harm-vs-self",
        "Harm level against the self-report index (the larger of self-assessment misalignment and the misaligned-AI pick rate), one point per model, coloured by persona class",
        harmVsSelfSpec(persona, "harm level", "self-report index (0-1)", cuts),
      ),
    );
  if (e.harmfulness)
    rateChart(
      "harmfulness",
      "Harmful outputs (rubric ≥ threshold), 95% CI",
      "harmful share",
      bars(e.harmfulness.per_model, (m) => m.harmful),
    );
  if (e.alignment)
    rateChart(
      "alignment",
      "Misaligned answers among coherent ones (Betley), 95% CI",
      "misaligned share",
      bars(e.alignment.per_model, (m) => m.misaligned),
    );
  if (e.self_assessment)
    rateChart(
      "self_assessment",
      "Self-assessments on the misaligned side, 95% CI",
      "misaligned share",
      bars(e.self_assessment.per_model, (m) => m.misaligned_share),
    );
  if (e.two_ai)
    rateChart(
      "two_ai",
      "Two-AI: picks the misaligned system as itself, 95% CI",
      "misaligned pick share",
      bars(e.two_ai.per_model, (m) => m.misaligned_pick),
    );
  if (e.recognition)
    rateChart(
      "recognition",
      "Recognition: claims its own output, 95% CI",
      "claim share",
      bars(e.recognition.per_model, (m) => m.claim),
    );
  if (e.score_prediction) {
    const rows: ErrorByActual[] = Object.entries(e.score_prediction.per_model).flatMap(([model, m]) =>
      Object.entries(m.by_actual).flatMap(([actual, s]) =>
        s.mean_error === null ? [] : [{ model, actual: Number(actual), error: s.mean_error, n: s.n }],
      ),
    );
    if (rows.length)
      jobs.push(
        renderChart(
          "prediction-error",
          "Mean error of a model's prediction of its own judged score, by the actual score",
          predictionErrorSpec(rows),
        ),
      );
  }
  if (e.cross_rating) {
    const c = e.cross_rating;
    const cells = c.raters.flatMap((rater) =>
      c.rated.map((rated) => ({
        rater,
        rated,
        error: c.matrix[rater]?.[rated]?.mean_error ?? null,
        n: c.matrix[rater]?.[rated]?.n ?? 0,
      })),
    );
    if (cells.length)
      jobs.push(
        renderChart(
          "cross-rating",
          "Cross-rating: mean error of each rater on each model's outputs",
          crossRatingSpec(cells),
        ),
      );
  }
  return Promise.all(jobs);
}

function interpSection(run: RunData, figure: (name: string) => SafeHtml | null): SafeHtml {
  const interp = run.results.interp;
  // The interp block of results.json, then the files it saved (artifacts of kind interp*).
  if (interp) {
    // Sections beyond the built-in ones (registered plugins), each under its own heading.
    const builtin = new Set(Object.keys(InterpResultsSchema.shape));
    const extra = Object.entries(interp).filter(([k, v]) => !builtin.has(k) && v !== undefined);
    const extraSections = extra.map(([name, block]) => {
      const r = interpReport(name);
      return html`<section id="interp-${name}" class="plugin"><h3>${r.heading}</h3>${r.render(block, run.results) ?? html`<p class="missing-note">${name}: no figures.</p>`}</section>`;
    });
    return html`${interpResultsSection(interp, figure)}${extraSections}${run.interp.length ? html`<h3>Saved interp files</h3>${artifactTable(run)}` : ""}`;
  }
  if (run.interp.length === 0)
    return html`<p class="missing-note">interp: ${run.study?.interp ? "configured, but the run holds no interpretability results yet" : "not run in this study"}.</p>`;
  return artifactTable(run);
}

function artifactTable(run: RunData): SafeHtml {
  return html`<table><thead><tr><th>id</th><th>kind</th><th>file</th><th>details</th></tr></thead><tbody>${run.interp.map(
    (a) =>
      html`<tr><th scope="row">${a.id}</th><td>${a.kind}</td><td><code>${a.path}</code></td><td><code>${a.meta ?? ""}</code></td></tr>`,
  )}</tbody></table>`;
}

/**
 * The page shell. The CSP allows no script at all, nothing external, and only the one
 * <style> block (by hash) plus the presentation attributes vega writes into its SVG.
 */
function page(title: string, body: SafeHtml): string {
  const styleHash = createHash("sha256").update(REPORT_CSS).digest("base64");
  const csp = [
    "default-src 'none'",
    `style-src 'sha256-${styleHash}'`,
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
${html`<title>${title}</title>`}
<style>${REPORT_CSS}</style>
</head>
<body>
${body}
</body>
</html>
`;
}
