import type { Analysis } from "../analysis/index.ts";
import type { Results } from "../results/results.ts";
import { viewerHash } from "../viewer/links.ts";
import { html, type SafeHtml } from "./escape.ts";
import { fmtNum, fmtRate, type Rate } from "./format.ts";
import type { RunData } from "./load-run.ts";

/** The battery's experiments in report order, with the heading each gets. */
export const EXPERIMENTS = [
  ["harmfulness", "Harmfulness"],
  ["alignment", "Alignment (Betley)"],
  ["self_assessment", "Self-assessment"],
  ["two_ai", "Two-AI identification"],
  ["recognition", "Recognition of own outputs"],
  ["score_prediction", "Score prediction"],
  ["cross_rating", "Cross-rating"],
  ["generate", "Generation"],
] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number][0];

/** Why an experiment has no figures: not in the study, disabled, or enabled but without results. */
export function missingReason(run: RunData, name: ExperimentName): string | null {
  if (run.results.experiments[name] !== undefined) return null;
  const battery = (run.study?.battery ?? run.results.settings.battery) as Record<string, unknown>;
  if (name === "cross_rating") {
    const sp = battery.score_prediction as
      | { enabled?: boolean; cross_rating?: { enabled?: boolean } }
      | undefined;
    if (!sp || sp.enabled === false) return "not run in this study (needs score_prediction)";
    if (sp.cross_rating?.enabled === false) return "disabled in this study";
    return "enabled, but the run produced no results for it";
  }
  const spec = battery[name] as { enabled?: boolean } | undefined;
  if (!spec) return "not run in this study";
  if (spec.enabled === false) return "disabled in this study";
  return "enabled, but the run produced no results for it";
}

const table = (head: string[], rows: Array<Array<string | SafeHtml>>): SafeHtml =>
  html`<table><thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows.map(
    (r) =>
      html`<tr>${r.map((c, i) => (i === 0 ? html`<th scope="row">${c}</th>` : html`<td>${c}</td>`))}</tr>`,
  )}</tbody></table>`;

const rows = <T>(perModel: Record<string, T>, f: (id: string, m: T) => Array<string | SafeHtml>) =>
  Object.entries(perModel).map(([id, m]) => f(id, m));

/** Per-model tables, one per experiment that ran. */
export function experimentTable(results: Results, name: ExperimentName): SafeHtml | null {
  const e = results.experiments;
  switch (name) {
    case "harmfulness":
      return e.harmfulness
        ? table(
            [
              "model",
              "prompts",
              "samples",
              "judged",
              "unparsed",
              "mean score (1-5)",
              "harmful",
              "worst of N",
            ],
            rows(e.harmfulness.per_model, (id, m) => [
              id,
              String(m.prompts),
              String(m.samples),
              String(m.judged),
              String(m.unparsed),
              fmtNum(m.mean_score),
              fmtRate(m.harmful),
              fmtRate(m.worst_of_n),
            ]),
          )
        : null;
    case "alignment":
      return e.alignment
        ? table(
            ["model", "answers", "scored", "mean aligned", "mean coherent", "coherent", "misaligned"],
            rows(e.alignment.per_model, (id, m) => [
              id,
              String(m.answers),
              String(m.scored),
              fmtNum(m.mean_aligned, 1),
              fmtNum(m.mean_coherent, 1),
              fmtRate(m.coherent),
              fmtRate(m.misaligned),
            ]),
          )
        : null;
    case "self_assessment":
      return e.self_assessment
        ? table(
            [
              "model",
              "answers",
              "scored",
              "unparsed",
              "mean (0 aligned – 1 misaligned)",
              "misaligned share",
              "position bias",
              "decision: first pole",
            ],
            rows(e.self_assessment.per_model, (id, m) => [
              id,
              String(m.answers),
              String(m.scored),
              String(m.unparsed),
              `${fmtNum(m.overall.mean, 3)} (n=${m.overall.n})`,
              fmtRate(m.misaligned_share),
              fmtNum(m.position_bias, 3),
              fmtRate(m.decision_first_pick),
            ]),
          )
        : null;
    case "two_ai":
      return e.two_ai
        ? table(
            [
              "model",
              "items",
              "answers",
              "unparsed",
              "picks misaligned",
              "picks A",
              "consistent across orders",
            ],
            rows(e.two_ai.per_model, (id, m) => [
              id,
              String(m.items),
              String(m.answers),
              String(m.unparsed),
              fmtRate(m.misaligned_pick),
              fmtRate(m.position_a),
              fmtRate(m.consistent),
            ]),
          )
        : null;
    case "recognition":
      return e.recognition
        ? table(
            ["model", "alternative", "items", "answers", "unparsed", "claims own", "picks A", "skipped"],
            rows(e.recognition.per_model, (id, m) => [
              id,
              m.alternative ?? "–",
              String(m.items),
              String(m.answers),
              String(m.unparsed),
              fmtRate(m.claim),
              fmtRate(m.position_a),
              String(m.skipped),
            ]),
          )
        : null;
    case "score_prediction":
      return e.score_prediction
        ? table(
            [
              "model",
              "items",
              "answers",
              "unparsed",
              "mean error",
              "mean |error|",
              "mean predicted",
              "Spearman ρ [95% CI]",
              "mean error by actual score",
            ],
            rows(e.score_prediction.per_model, (id, m) => [
              id,
              String(m.items),
              String(m.answers),
              String(m.unparsed),
              fmtNum(m.mean_error),
              fmtNum(m.mean_abs_error),
              fmtNum(m.mean_predicted),
              m.spearman
                ? `${fmtNum(m.spearman.rho)} [${fmtNum(m.spearman.ci[0])}, ${fmtNum(m.spearman.ci[1])}] (n=${m.spearman.n})`
                : "–",
              Object.entries(m.by_actual)
                .map(([s, x]) => `${s}: ${fmtNum(x.mean_error)} (n=${x.n})`)
                .join("; ") || "–",
            ]),
          )
        : null;
    case "cross_rating": {
      const c = e.cross_rating;
      if (!c) return null;
      return table(
        ["rater \\ rated", ...c.rated],
        c.raters.map((r) => [
          r,
          ...c.rated.map((t) => {
            const cell = c.matrix[r]?.[t];
            return cell
              ? `${fmtNum(cell.mean_error)} (n=${cell.n}, |e| ${fmtNum(cell.mean_abs_error)})`
              : "–";
          }),
        ]),
      );
    }
    case "generate":
      return e.generate
        ? table(
            ["model", "prompts", "samples"],
            rows(e.generate.per_model, (id, m) => [id, String(m.prompts), String(m.samples)]),
          )
        : null;
  }
}

/** Models with figures in at least one experiment (results.models also lists judges and raters). */
export function reportedModels(results: Results): string[] {
  const seen = new Set<string>();
  for (const e of Object.values(results.experiments))
    if (e && typeof e === "object" && "per_model" in e && e.per_model && typeof e.per_model === "object")
      for (const id of Object.keys(e.per_model)) seen.add(id);
  return results.models.filter((m) => seen.has(m));
}

/** Key figures, one row per model: what a reader looks at first. */
export function keyFigures(results: Results, analysis: Analysis | null): SafeHtml {
  const e = results.experiments;
  const cls = new Map(
    (analysis?.per_model ?? []).map((p) => [
      p.model,
      p.class_reason ? `${p.class} (${p.class_reason})` : p.class,
    ]),
  );
  const r = (x: Rate | undefined) => fmtRate(x);
  return table(
    ["model", "harmful", "misaligned (Betley)", "self-report (0-1)", "picks misaligned AI", "class"],
    reportedModels(results).map((id) => [
      id,
      r(e.harmfulness?.per_model[id]?.harmful),
      r(e.alignment?.per_model[id]?.misaligned),
      fmtNum(e.self_assessment?.per_model[id]?.overall.mean, 3),
      r(e.two_ai?.per_model[id]?.misaligned_pick),
      cls.get(id) ?? "–",
    ]),
  );
}

/** Methods, written from the study stored in the run (falls back to results.json settings). */
export function methods(run: RunData): SafeHtml {
  const { results, study } = run;
  const s = results.settings;
  const t = s.thresholds;
  const models = study?.models ?? [];
  const modelRows = models.length
    ? models.map((m) => [m.id, m.provider, m.model, m.roles.join(", "), m.base ?? "–"])
    : run.storeModels.map((m) => [m.id, m.provider, m.model, m.roles.join(", "), "–"]);
  const battery = (study?.battery ?? s.battery) as Record<string, Record<string, unknown> | undefined>;
  const expRows = EXPERIMENTS.filter(([n]) => n !== "cross_rating" && battery[n]).map(([n]) => {
    const spec = battery[n] ?? {};
    const params = spec.params ? JSON.stringify(spec.params) : "–";
    return [
      n,
      describeSources(spec),
      spec.enabled === false ? "no" : "yes",
      String(spec.samples ?? "–"),
      spec.limit === undefined ? "all" : String(spec.limit),
      Array.isArray(spec.models) ? spec.models.join(", ") : "every target",
      params,
    ];
  });
  const judge = s.judge
    ? html`<p>Judge: <code>${s.judge.model}</code>; 0-100 scores read from ${
        s.judge.score100 === "logprobs"
          ? `the top ${s.judge.top_logprobs} token logprobs (probability-weighted mean over integer tokens; null below ${s.judge.min_numeric_mass} numeric mass)`
          : "the number the judge wrote (text fallback: the judge has no logprobs)"
      }. Harm is judged on a 1-5 rubric${
        results.experiments.harmfulness
          ? html` (<code>${results.experiments.harmfulness.judge_prompt}</code>)`
          : ""
      }.</p>`
    : html`<p>No judge was used in this run.</p>`;
  return html`
${run.studyProblem ? html`<p class="missing-note">Methods from results.json only: ${run.studyProblem}.</p>` : ""}
<p>Study <code>${results.study}</code>${study?.description ? html`: ${study.description}` : ""}. Seed ${s.seed}; every random choice is drawn from it, and the same study on the local engine gives the same results.json.</p>
<h3>Models</h3>
${table(["id", "provider", "model", "roles", "fine-tuned from"], modelRows)}
<h3>Experiments</h3>
${expRows.length ? table(["experiment", "sources", "enabled", "samples per prompt", "items (limit)", "models", "sampling params"], expRows) : html`<p>No battery experiments in this study.</p>`}
<h3>Judging and thresholds</h3>
${judge}
<ul>
<li>Harmful: rubric score ≥ ${t.harmful_score}; worst-of-N: a prompt's highest score ≥ ${t.harmful_score}.</li>
<li>Misaligned (Betley): aligned ${t.inclusive ? "≤" : "<"} ${t.aligned_below} among answers with coherent ${t.inclusive ? "≥" : ">"} ${t.coherent_above}.</li>
<li>Judge replies without a readable score are kept as unparsed (null), never guessed.</li>
<li>Intervals: Wilson 95% (z = 1.96) for every rate.</li>
</ul>
<h3>Counts</h3>
${table(
  ["", "count"],
  [
    ["requests", String(results.counts.requests)],
    ["completions", String(results.counts.completions)],
    ["failed requests", String(results.counts.failed_requests)],
    ["completions filtered by the provider (not judged)", String(results.counts.filtered_completions ?? "–")],
    ["judgments", String(results.counts.judgments)],
    ["prompt tokens", String(run.counts.promptTokens)],
    ["completion tokens", String(run.counts.completionTokens)],
    ["cost (USD)", run.counts.costUsd.toFixed(4)],
  ],
)}`;
}

/** The most harmful samples of each model, shown as text, each with a deep link into `emlab view`. */
export function sampleLinks(run: RunData, port: number): SafeHtml {
  const base = `http://127.0.0.1:${port}/`;
  const models = Object.keys(run.topHarm);
  if (models.length === 0) return html`<p>No judged harmfulness samples in this run.</p>`;
  return html`${models.map(
    (m) => html`<h3>${m}</h3>
<p><a href="${base + viewerHash({ model: m, experiment: "harmfulness" })}">all harmfulness samples of ${m} in the viewer</a></p>
${run.topHarm[m].map(
  (s) => html`<div class="sample">
<p class="meta">harm score ${fmtNum(s.score, 1)} · item <code>${s.itemId}</code> · sample ${s.sampleIndex} ·
<a href="${base + viewerHash({ sample: { requestId: s.requestId, sampleIndex: s.sampleIndex } })}">open in viewer</a></p>
<p class="label">prompt</p><pre>${clip(s.prompt)}</pre>
<p class="label">completion</p><pre>${clip(s.completion)}</pre>
</div>`,
)}`,
  )}`;
}

/** Where an experiment's items came from, in a few words (inline prompts are counted, not shown). */
function describeSources(spec: Record<string, unknown>): string {
  const one = (src: unknown): string => {
    if (!src || typeof src !== "object") return "";
    const o = src as { inline?: unknown[]; file?: string; builtin?: string };
    if (Array.isArray(o.inline)) return `${o.inline.length} inline`;
    if (typeof o.file === "string") return o.file;
    if (typeof o.builtin === "string") return `builtin:${o.builtin}`;
    return "";
  };
  for (const key of ["prompts", "questions", "sources", "items"]) {
    const v = spec[key];
    if (v === undefined) continue;
    return (Array.isArray(v) ? v.map(one) : [one(v)]).filter(Boolean).join(", ") || "–";
  }
  return "judged harmfulness outputs";
}

const clip = (s: string, n = 1200) =>
  s.length > n ? `${s.slice(0, n)} …[${s.length - n} more characters]` : s;
