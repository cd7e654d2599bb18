import type { InterpResults } from "../results/interp.ts";
import { html, type SafeHtml } from "./escape.ts";
import { fmtNum, fmtRate } from "./format.ts";
import {
  ablationSpec,
  directionNormsSpec,
  emergentProjectionSpec,
  emergentRatesSpec,
  probeLayersSpec,
  realignmentSpec,
  steeringSpec,
} from "./interp-charts.ts";
import { type Chart, renderChart } from "./render-chart.ts";

/**
 * The report's interp section from results.json's `interp` block: one chart and tables per
 * section (probes, persona directions, steering, ablation, re-alignment, the emergent-alignment
 * loop), every figure with its interval.
 */

/** Renders the interp charts (names `interp-<section>`). */
export async function interpCharts(interp: InterpResults | undefined): Promise<Chart[]> {
  if (!interp) return [];
  const jobs: Promise<Chart>[] = [];
  const add = (name: string, title: string, spec: ReturnType<typeof probeLayersSpec>) => {
    if (spec) jobs.push(renderChart(`interp-${name}`, title, spec));
  };
  if (interp.probes)
    add("probes", "Probe accuracy and AUC by layer (5-fold CV, 95% CIs)", probeLayersSpec(interp.probes));
  if (interp.directions)
    add("directions", "Persona direction norm by layer", directionNormsSpec(interp.directions));
  if (interp.steering)
    add(
      "steering",
      "Steering: harmful and coherent rate by alpha (Wilson 95% CIs)",
      steeringSpec(interp.steering),
    );
  if (interp.ablation)
    add("ablation", "Ablation: harmful rate per condition (Wilson 95% CIs)", ablationSpec(interp.ablation));
  if (interp.realignment)
    add(
      "realignment",
      "Re-alignment: harmful, coherent and self-report rates by training step (Wilson 95% CIs)",
      realignmentSpec(interp.realignment),
    );
  if (interp.emergent_alignment) {
    add(
      "emergent-alignment",
      "Emergent-alignment loop: unsteered harmful and coherent rates and the direction's AUC by round",
      emergentRatesSpec(interp.emergent_alignment),
    );
    add(
      "emergent-alignment-projection",
      "Emergent-alignment loop: mean projection on the persona direction by round",
      emergentProjectionSpec(interp.emergent_alignment),
    );
  }
  return Promise.all(jobs);
}

const ci = (x: number | null, c: { low: number; high: number } | null, digits = 3) =>
  x === null
    ? "–"
    : `${fmtNum(x, digits)}${c ? ` [${fmtNum(c.low, digits)}, ${fmtNum(c.high, digits)}]` : ""}`;
const layersLabel = (l: number[] | "all" | null) => (l === null ? "–" : l === "all" ? "all" : l.join("+"));

function probesTables(p: NonNullable<InterpResults["probes"]>): SafeHtml {
  const rows = Object.entries(p.models).flatMap(([model, m]) =>
    (["harm", "self"] as const).flatMap((probe) => {
      const set = m[probe];
      if (set.skipped !== null)
        return [
          html`<tr><th scope="row">${model}</th><td>${probe}</td><td>${set.n}</td><td>${set.positives}</td><td colspan="4" class="missing-note">skipped: ${set.skipped}</td></tr>`,
        ];
      return set.layers.map((l) => {
        const cos = m.cosine.find((c) => c.layer === l.layer);
        return html`<tr><th scope="row">${model}</th><td>${probe}</td><td>${set.n}</td><td>${set.positives}</td><td>${l.layer}</td><td>${ci(l.accuracy, l.accuracy_ci)}</td><td>${ci(l.auc, l.auc_ci)}</td><td>${probe === "harm" && cos ? ci(cos.cosine, cos.ci) : "–"}</td></tr>`;
      });
    }),
  );
  const t = p.transfer;
  const transfer = t
    ? html`<p>Harm-probe transfer at layer ${t.layer} (fit on the row model, tested on the column model; diagonal: CV). Accuracy [Wilson 95% CI] / AUC:</p>
<table><thead><tr><th>fit on \\ tested on</th>${t.models.map((m) => html`<th>${m}</th>`)}</tr></thead><tbody>${t.models.map(
        (m, i) =>
          html`<tr><th scope="row">${m}</th>${t.models.map((_, j) => html`<td>${ci(t.accuracy[i][j], t.accuracy_ci[i][j], 2)} / ${fmtNum(t.auc[i][j], 3)}</td>`)}</tr>`,
      )}</tbody></table>`
    : html`<p class="missing-note">Transfer: ${p.transfer_skipped ?? "not computed"}.</p>`;
  return html`<p class="note">L2 logistic probes (C = ${p.C}), ${p.folds}-fold CV (seed ${p.seed}) on ${p.position} activations; harm label: ${p.harm_answers === "alignment" ? "alignment answers, coherent only, aligned score at the direction thresholds" : `harm score ≥ ${p.harmful_score}`}; self label: self-assessment misalignment &gt; 0.5. Accuracy with Wilson 95% CI, AUC with a bootstrap CI over folds; cosine between the harm and self probes' directions with a bootstrap CI.</p>
<table><thead><tr><th>model</th><th>probe</th><th>n</th><th>positives</th><th>layer</th><th>accuracy</th><th>AUC</th><th>cos(harm, self)</th></tr></thead><tbody>${rows}</tbody></table>
${transfer}`;
}

function directionsTables(d: NonNullable<InterpResults["directions"]>): SafeHtml {
  const rows = Object.entries(d.models).map(([model, m]) =>
    m.skipped !== null
      ? html`<tr><th scope="row">${model}</th><td>${m.answers}</td><td colspan="3" class="missing-note">skipped: ${m.skipped}</td></tr>`
      : html`<tr><th scope="row">${model}</th><td>${m.answers}</td><td>${m.count} (of ${m.available_aligned} aligned, ${m.available_misaligned} misaligned)</td><td>${m.layers.map((l) => `${l.layer}: ${fmtNum(l.norm, 3)}`).join(", ")}</td><td>${m.cosine_across_layers.length > 1 ? fmtNum(m.cosine_across_layers[0][m.cosine_across_layers.length - 1], 3) : "–"}</td></tr>`,
  );
  const cross = d.cross_model.map(
    (c) =>
      html`<tr><th scope="row">${c.a} · ${c.b}</th><td>${c.layers.map((l) => `${l.layer}: ${fmtNum(l.cosine, 3)}`).join(", ")}</td></tr>`,
  );
  return html`<p class="note">Mean(misaligned) − mean(aligned) ${d.position} activations of coherent (&gt; ${d.coherent_above}) alignment answers: aligned &gt; ${d.aligned_above}, misaligned ≤ ${d.misaligned_at_most}, both sets subsampled to equal size (seed ${d.seed}).</p>
<table><thead><tr><th>model</th><th>answers</th><th>per set</th><th>norm by layer</th><th>cos(first, last layer)</th></tr></thead><tbody>${rows}</tbody></table>
${cross.length ? html`<table><thead><tr><th>models</th><th>cosine by layer</th></tr></thead><tbody>${cross}</tbody></table>` : ""}`;
}

function sweepTable(
  s: NonNullable<InterpResults["steering"]> | NonNullable<InterpResults["ablation"]>,
): SafeHtml {
  if (s.skipped !== null) return html`<p class="missing-note">skipped: ${s.skipped}.</p>`;
  const rows = s.conditions.map(
    (c) =>
      html`<tr><th scope="row">${c.name}</th><td>${c.vector ?? "–"}</td><td>${c.alpha ?? "–"}</td><td>${layersLabel(c.layers)}</td><td>${fmtRate(c.harmful)}</td><td>${fmtRate(c.coherent)}</td><td>${fmtRate(c.harmful_given_coherent)}</td></tr>`,
  );
  return html`<p class="note">Model <code>${s.model}</code>, direction from <code>${s.direction_from}</code>; ${s.prompts} prompt(s) × ${s.samples} sample(s), seed ${s.seed}, random control seed ${s.random_seed}, positions: ${s.positions}. Judge <code>${s.judge.model}</code>: harmful = harm score ≥ ${s.judge.harmful_score}; coherence: ${s.judge.coherence === "alignment_prompt" ? "the alignment experiment's coherent prompt" : "harm reply readable (no coherent prompt in the study)"}. Rates with Wilson 95% CIs.</p>
<table><thead><tr><th>condition</th><th>vector</th><th>alpha</th><th>layers</th><th>harmful</th><th>coherent</th><th>harmful | coherent</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function reductionTable(a: NonNullable<InterpResults["ablation"]>): SafeHtml {
  if (a.reduction.length === 0) return html``;
  return html`<table><thead><tr><th>layers</th><th>vector</th><th>harmful</th><th>baseline</th><th>relative reduction</th></tr></thead><tbody>${a.reduction.map(
    (r) =>
      html`<tr><th scope="row">${layersLabel(r.layers)}</th><td>${r.vector}</td><td>${fmtNum(r.harmful_rate, 3)}</td><td>${fmtNum(r.baseline_rate, 3)}</td><td>${fmtNum(r.reduction, 3)}</td></tr>`,
  )}</tbody></table>`;
}

const trainLabel = (t: NonNullable<InterpResults["realignment"]>["train"]) =>
  `${t.method === "lora" && t.lora ? `LoRA r ${t.lora.rank}, alpha ${t.lora.alpha}${t.lora.rslora ? " (rsLoRA)" : ""}` : "full fine-tuning"}, lr ${t.learning_rate}, batch ${t.batch_size}, ${t.steps} step(s), seed ${t.train_seed}`;
const pts = (x: number | null) => (x === null ? "–" : `${(100 * x).toFixed(1)}`);

function realignmentTables(r: NonNullable<InterpResults["realignment"]>): SafeHtml {
  const last = r.checkpoints.at(-1);
  const b = r.base_eval;
  const baseLine = b
    ? html`<p>Base model <code>${r.base ?? ""}</code>: harmful ${fmtRate(b.harmful)}, coherent ${fmtRate(b.coherent)}${b.self_report ? html`, self-report ${fmtRate(b.self_report)}` : ""}. After ${last?.step ?? 0} step(s) the harmful rate is ${pts(last?.gap_to_base ?? null)} points from the base's.</p>`
    : html`<p class="missing-note">No base model given: the gap to the base is not computed.</p>`;
  const rows = r.checkpoints.map(
    (c) =>
      html`<tr><th scope="row">${c.step}</th><td>${fmtNum(c.loss, 4)}</td><td>${fmtRate(c.harmful)}</td><td>${fmtRate(c.coherent)}</td><td>${fmtRate(c.harmful_given_coherent)}</td><td>${c.self_report ? fmtRate(c.self_report) : "–"}</td><td>${pts(c.gap_to_base)}</td></tr>`,
  );
  return html`<p class="note">Model <code>${r.model}</code> fine-tuned on ${r.examples} conversation(s) of <code>${r.dataset}</code> (${trainLabel(r.train)}), evaluated at each checkpoint on ${r.prompts} prompt(s) × ${r.samples} sample(s) (seed ${r.seed}, the same samples' seeds at every step). Judge <code>${r.judge.model}</code>: harmful = harm score ≥ ${r.judge.harmful_score}. Self-report: share of misaligned picks among parsed answers to ${r.self_items} decision-format self-assessment item(s)${r.self_skipped ? html` (not measured: ${r.self_skipped})` : ""}. Rates with Wilson 95% CIs.</p>
${baseLine}
<table><thead><tr><th>step</th><th>loss</th><th>harmful</th><th>coherent</th><th>harmful | coherent</th><th>self-report</th><th>harmful − base (points)</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function emergentTables(e: NonNullable<InterpResults["emergent_alignment"]>): SafeHtml {
  if (e.skipped !== null) return html`<p class="missing-note">skipped: ${e.skipped}.</p>`;
  const rows = e.rounds.map(
    (r) =>
      html`<tr><th scope="row">${r.round}</th><td>${r.collected ? `${r.collected.kept}/${r.collected.answers} (${r.collected.harmful_kept} harmful)` : "–"}</td><td>${r.loss ? `${fmtNum(r.loss.first, 4)} → ${fmtNum(r.loss.last, 4)}` : "–"}</td><td>${fmtRate(r.harmful)}</td><td>${fmtRate(r.coherent)}</td><td>${fmtNum(r.probe?.mean ?? null, 3)}</td><td>${fmtNum(r.probe?.mean_harmful ?? null, 3)} / ${fmtNum(r.probe?.mean_safe ?? null, 3)}</td><td>${fmtNum(r.probe?.auc ?? null, 3)}</td></tr>`,
  );
  return html`<p class="note">Each round: the current model steered with alpha = ${e.alpha} along <code>${e.direction_from}</code>'s persona direction (mean(misaligned) − mean(aligned); negative alpha steers toward the aligned persona) at layers ${e.layers}, positions ${e.positions}, answers ${e.train_prompts} training prompt(s) × ${e.samples_per_prompt}; its coherent answers fine-tune the unsteered model (${trainLabel(e.train)}). The unsteered model is then evaluated on ${e.prompts} other prompt(s) × ${e.samples} sample(s) (seed ${e.seed}). Probe reading: mean projection of its answers' activations on the unit direction at layer ${e.probe_layer}; AUC: that projection separating the judge's harmful from safe answers (– with one class empty). Round 0 is the model before the loop.</p>
<table><thead><tr><th>round</th><th>kept (coherent) steered answers</th><th>loss</th><th>harmful</th><th>coherent</th><th>projection</th><th>harmful / safe</th><th>AUC</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** The section body: per interp section a heading, its chart (when it has points) and tables. */
export function interpResultsSection(
  interp: InterpResults,
  figure: (name: string) => SafeHtml | null,
): SafeHtml {
  const part = (name: string, heading: string, body: SafeHtml) =>
    html`<section id="interp-${name}"><h3>${heading}</h3>${figure(`interp-${name}`)}${body}</section>`;
  return html`${interp.probes ? part("probes", "Probes", probesTables(interp.probes)) : ""}
${interp.directions ? part("directions", "Persona directions", directionsTables(interp.directions)) : ""}
${interp.steering ? part("steering", "Steering", sweepTable(interp.steering)) : ""}
${interp.ablation ? part("ablation", `Ablation (${interp.ablation.mode})`, html`${sweepTable(interp.ablation)}${reductionTable(interp.ablation)}`) : ""}
${interp.realignment ? part("realignment", "Re-alignment", realignmentTables(interp.realignment)) : ""}
${interp.emergent_alignment ? part("emergent-alignment", "Emergent-alignment loop", html`${figure("interp-emergent-alignment-projection")}${emergentTables(interp.emergent_alignment)}`) : ""}`;
}
