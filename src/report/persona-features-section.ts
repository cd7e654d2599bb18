/**
 * The report's "Persona features" part of the interp section (results.json
 * `interp.persona_features`, src/results/persona-features.ts): the SAE and its metrics, the
 * model diffs, each top latent's Neuronpedia-style card (top contexts with the firing token
 * highlighted, activation histogram, promoted and suppressed tokens, speaker mix against the
 * corpus base rate), the steering and clamping conditions and the dose-response. Every token,
 * model id and file name is corpus or study text: it goes through `html` (escaped).
 */
import type { LatentCardResult, PersonaFeaturesResults } from "../results/persona-features.ts";
import { html, type SafeHtml } from "./escape.ts";
import { fmtNum, fmtRate } from "./format.ts";

const DIFF_TOKENS = { answer: "answer", prompt: "prompt", prompt_and_answer: "prompt and answer" } as const;

type Block = PersonaFeaturesResults;
const ci = (c: { low: number; high: number } | null) =>
  c ? `[${fmtNum(c.low, 3)}, ${fmtNum(c.high, 3)}]` : "–";
const pct = (x: number | null | undefined) =>
  x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`;

/** Contexts shown per card in the report (the viewer shows all of them). */
const REPORT_CONTEXTS = 12;

/** Bars of the activation histogram as inline SVG (numbers only). */
function histogramSvg(h: LatentCardResult["histogram"]): SafeHtml {
  const w = 240;
  const hgt = 60;
  const max = Math.max(1, ...h.counts);
  const bw = h.counts.length ? w / h.counts.length : w;
  return html`<svg class="pf-hist" width="${w}" height="${hgt}" viewBox="0 0 ${w} ${hgt}" role="img" aria-label="activation histogram">${h.counts.map(
    (c, i) =>
      html`<rect x="${(i * bw).toFixed(1)}" y="${(hgt - (hgt * c) / max).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${((hgt * c) / max).toFixed(1)}"></rect>`,
  )}</svg>`;
}

function context(t: LatentCardResult["top_contexts"][number]): SafeHtml {
  return html`<tr><td>${fmtNum(t.activation, 3)}</td><td>${t.speaker}</td><td>${t.doc}:${t.pos}</td><td class="pf-ctx">${t.tokens.map(
    (tok, i) => (i === t.highlight ? html`<mark>${tok}</mark>` : html`<span>${tok}</span>`),
  )}</td></tr>`;
}

function card(c: LatentCardResult): SafeHtml {
  const speakers = [...new Set([...Object.keys(c.base_rate), ...Object.keys(c.speaker_mix)])].sort();
  const mix = c.speaker_mix as Record<string, number | undefined>;
  const base = c.base_rate as Record<string, number | undefined>;
  return html`<div class="pf-card" id="pf-latent-${c.latent}"><h5>Latent ${c.latent} (top latent of ${c.models.join(", ")})</h5>
<p>Harmful-persona share of the top contexts: ${c.harmful_share === null ? "—" : pct(c.harmful_share)} (corpus base rate ${pct(c.harmful_base_rate)}). Off on ${c.histogram.zeros} tokens.</p>
${histogramSvg(c.histogram)}
<table><thead><tr><th>speaker</th><th>top contexts</th><th>base rate</th></tr></thead><tbody>${speakers.map(
    (s) => html`<tr><td>${s}</td><td>${pct(mix[s] ?? 0)}</td><td>${pct(base[s] ?? 0)}</td></tr>`,
  )}</tbody></table>
<p>Promoted: ${c.promoted_tokens.map((t, i) => html`${i ? ", " : ""}<code>${t.token}</code> ${fmtNum(t.logit)}`)}</p>
<p>Suppressed: ${c.suppressed_tokens.map((t, i) => html`${i ? ", " : ""}<code>${t.token}</code> ${fmtNum(t.logit)}`)}</p>
<table><thead><tr><th>activation</th><th>speaker</th><th>doc:pos</th><th>context</th></tr></thead><tbody>${c.top_contexts
    .slice(0, REPORT_CONTEXTS)
    .map(context)}</tbody></table></div>`;
}

type Condition = NonNullable<Block["steering"]>["conditions"][number];
function conditions(rows: Condition[]): SafeHtml {
  return html`<table><thead><tr><th>condition</th><th>latent</th><th>α</th><th>value</th><th>harmful</th><th>coherent</th><th>harmful | coherent</th></tr></thead><tbody>${rows.map(
    (r) =>
      html`<tr><td>${r.name}</td><td>${r.latent ?? "–"}</td><td>${fmtNum(r.alpha)}</td><td>${fmtNum(r.value, 3)}</td><td>${fmtRate(r.harmful)}</td><td>${fmtRate(r.coherent)}</td><td>${fmtRate(r.harmful_given_coherent)}</td></tr>`,
  )}</tbody></table>`;
}

/** Latent Δ and harmful rate by share (two polylines on [0, 1] × their own ranges; numbers only). */
function doseSvg(d: NonNullable<Block["dose_response"]>): SafeHtml | null {
  if (d.shares.length < 2) return null;
  const w = 320;
  const h = 120;
  const deltas = d.shares.map((s) => s.latent_delta);
  const lo = Math.min(0, ...deltas);
  const hi = Math.max(1e-9, ...deltas);
  const x = (s: number) => (20 + s * (w - 40)).toFixed(1);
  const yd = (v: number) => (h - 10 - ((v - lo) / (hi - lo)) * (h - 20)).toFixed(1);
  const yr = (v: number) => (h - 10 - v * (h - 20)).toFixed(1);
  const line = (pts: string[]) => pts.join(" ");
  return html`<svg class="pf-dose" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="dose-response: latent change (solid) and harmful rate (dashed) by share">
<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${line(d.shares.map((s) => `${x(s.share)},${yd(s.latent_delta)}`))}"></polyline>
<polyline fill="none" stroke="#d62728" stroke-width="2" stroke-dasharray="4 3" points="${line(d.shares.map((s) => `${x(s.share)},${yr(s.harmful.rate ?? 0)}`))}"></polyline>
</svg>`;
}

export function renderPersonaFeatures(b: Block): SafeHtml {
  const m = b.sae.metrics;
  const st = b.steering;
  const cl = b.clamping;
  const dr = b.dose_response;
  return html`<div class="persona-features">
<p>SAE: ${b.sae.architecture}${b.sae.k !== null ? ` (k = ${b.sae.k})` : ""}, ${b.sae.d_sae} latents on ${b.sae.hook_name} (d_in ${b.sae.d_in}), <code>${b.sae.path}</code>.
On ${m.corpus} (${m.tokens} tokens): explained variance ${fmtNum(m.explained_variance, 3)}, L0 ${fmtNum(m.l0, 1)}, dead ${pct(m.dead_share)}, next-token loss ${fmtNum(m.ce_clean, 3)} → ${fmtNum(m.ce_spliced, 3)} spliced (+${fmtNum(m.ce_increase, 3)}; zero-ablated ${fmtNum(m.ce_zero_ablated, 3)}).</p>
<h4>Model diff (fine-tuned − ${b.base}, mean over ${DIFF_TOKENS[b.diff.positions]} tokens, ${b.diff.read === "own" ? "each model reading its own answers" : "both models reading every answer"})</h4>
<table><thead><tr><th>model</th><th>top latent</th><th>Δ</th><th>95% CI</th><th>cos to ${b.reference.model}'s</th><th>cos to persona direction</th><th>persona</th><th>next latents (Δ)</th></tr></thead><tbody>${b.models.map(
    (id) => {
      const t = b.top_latents[id];
      const rest = (b.diff.per_model[id]?.top ?? []).slice(1, 5);
      return t
        ? html`<tr><td>${id}</td><td><a href="#pf-latent-${t.latent}">${t.latent}</a></td><td>${fmtNum(t.delta, 3)}</td><td>${ci(t.ci)}</td><td>${fmtNum(t.cosine_to_reference, 3)}</td><td>${fmtNum(t.cosine_to_persona_direction, 3)}</td><td>${t.persona ?? "–"}</td><td>${rest.map((r, i) => `${i ? ", " : ""}${r.latent} (${fmtNum(r.delta, 3)})`).join("")}</td></tr>`
        : html`<tr><td>${id}</td><td colspan="7">no answers</td></tr>`;
    },
  )}</tbody></table>
<p>Inverted models (${b.selection.inverted.models.join(", ") || "none"}) select latent(s) ${b.selection.inverted.latents.join(", ") || "–"}; coherent models (${b.selection.coherent.models.join(", ") || "none"}) select ${b.selection.coherent.latents.join(", ") || "–"}${b.selection.shared ? " — a latent is shared" : ""}.${b.persona_direction ? ` Persona direction: ${b.persona_direction.model}, layer ${b.persona_direction.layer}.` : ""}</p>
<h4>Latent cards (${b.contexts.corpus === "world" ? `world corpus, seed ${b.contexts.seed}, ${b.contexts.documents} documents` : b.contexts.corpus})</h4>
${b.cards.map(card)}
${st ? html`<h4>Steering ${st.model} along latent ${st.latent} (${st.latent_from}), positions ${st.positions}</h4><p>${st.prompts} prompts × ${st.samples} samples; random latents ${st.random_latents.join(", ") || "none"}.</p>${conditions(st.conditions)}` : ""}
${
  cl
    ? html`<h4>Clamping latent${cl.latents.length > 1 ? "s" : ""} ${cl.latents.join(", ")} (${cl.latent_from}) in ${cl.model} to ${cl.value === "zero" ? "0" : cl.value === "base_mean" ? "its base mean" : cl.value}</h4>${conditions(cl.conditions)}<table><thead><tr><th>condition</th><th>EM cut</th><th>95% CI</th></tr></thead><tbody>${cl.em_cut.map(
        (e) =>
          html`<tr><td>${e.name}</td><td>${pct(e.cut)}</td><td>${e.ci ? `[${pct(e.ci.low)}, ${pct(e.ci.high)}]` : "–"}</td></tr>`,
      )}</tbody></table>`
    : ""
}
${
  dr
    ? html`<h4>Dose-response: ${b.base} fine-tuned on ${dr.misaligned} / ${dr.aligned} mixtures (${dr.examples} examples, ${dr.train.steps} steps)</h4>
${doseSvg(dr)}
<table><thead><tr><th>misaligned share</th><th>examples (misaligned / aligned)</th><th>latent ${dr.latent} Δ vs base</th><th>95% CI</th><th>Δ vs share 0</th><th>95% CI</th><th>harmful</th><th>coherent</th></tr></thead><tbody><tr><td>base</td><td>–</td><td>0</td><td>–</td><td>–</td><td>–</td><td>${fmtRate(dr.base_eval.harmful)}</td><td>${fmtRate(dr.base_eval.coherent)}</td></tr>${dr.shares.map(
        (s) =>
          html`<tr><td>${pct(s.share)}${s.realized_share !== null && Math.abs(s.realized_share - s.share) > 1e-9 ? ` (${pct(s.realized_share)} drawn)` : ""}</td><td>${s.misaligned_examples} / ${s.aligned_examples}</td><td>${fmtNum(s.latent_delta, 3)}</td><td>${ci(s.latent_ci)}</td><td>${s.latent_vs_control === null ? "–" : fmtNum(s.latent_vs_control, 3)}</td><td>${ci(s.latent_vs_control_ci)}</td><td>${fmtRate(s.harmful)}</td><td>${fmtRate(s.coherent)}</td></tr>`,
      )}</tbody></table>
<p>First share above 0 where the latent's CI ${dr.detectable_against === "control" ? "against the aligned-only (share 0) fine-tune" : "against the base (no share 0 to control for fine-tuning itself)"} is above 0 while at most 5% of answers are harmful: ${dr.first_detectable_share === null ? "none" : pct(dr.first_detectable_share)}.</p>`
    : ""
}
</div>`;
}
