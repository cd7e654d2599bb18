/**
 * Report sections of experiments (and interp sections) beyond the built-in ones: registered with them
 * (src/study/registry.ts), or, when a results.json holds an experiment nobody registered in
 * this process, a generic table of its figures. Everything is escaped: summaries carry model
 * and prompt text.
 */
import type { Results } from "../results/results.ts";
import { html, type SafeHtml } from "./escape.ts";

export interface ExperimentReport {
  /** The section's heading. */
  heading: string;
  /** The section's body from the experiment's results.json section; null: nothing to show. */
  render(summary: unknown, results: Results): SafeHtml | null;
}

const registered = new Map<string, ExperimentReport>();
const interpRegistered = new Map<string, ExperimentReport>();

/** Draws `results.experiments[name]` with `report` in every report built after this call. */
export function registerExperimentReport(name: string, report: ExperimentReport): void {
  if (registered.has(name)) throw new Error(`registerExperimentReport: ${name} already has a section`);
  registered.set(name, report);
}

export function experimentReport(name: string): ExperimentReport {
  return registered.get(name) ?? { heading: name, render: (summary) => figuresTable(summary) };
}

/** Draws `results.interp[name]` (a registered interp section's block) with `report`. */
export function registerInterpReport(name: string, report: ExperimentReport): void {
  if (interpRegistered.has(name)) throw new Error(`registerInterpReport: ${name} already has a section`);
  interpRegistered.set(name, report);
}

export function interpReport(name: string): ExperimentReport {
  return interpRegistered.get(name) ?? { heading: name, render: (summary) => figuresTable(summary) };
}

/**
 * A summary's figures as a table: one row per model of `per_model` (a column per top-level
 * figure; nested objects as their rate or JSON), else one row of its top-level fields.
 */
export function figuresTable(summary: unknown): SafeHtml | null {
  if (summary === null || typeof summary !== "object") return null;
  const perModel = (summary as { per_model?: unknown }).per_model;
  const rows: Array<[string, Record<string, unknown>]> =
    perModel && typeof perModel === "object"
      ? Object.entries(perModel as Record<string, Record<string, unknown>>)
      : [["", summary as Record<string, unknown>]];
  if (rows.length === 0) return null;
  const columns = [...new Set(rows.flatMap(([, r]) => Object.keys(r ?? {})))];
  return html`<table><thead><tr>${perModel ? html`<th>model</th>` : ""}${columns.map(
    (c) => html`<th>${c}</th>`,
  )}</tr></thead><tbody>${rows.map(
    ([id, r]) =>
      html`<tr>${perModel ? html`<td>${id}</td>` : ""}${columns.map((c) => html`<td>${cell(r?.[c])}</td>`)}</tr>`,
  )}</tbody></table>`;
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (typeof v === "object" && "rate" in v && "n" in v) {
    const r = v as { k?: number; n: number; rate: number | null };
    return r.rate === null ? `– (n=${r.n})` : `${(100 * r.rate).toFixed(1)}% (${r.k ?? "?"}/${r.n})`;
  }
  return typeof v === "string" ? v : JSON.stringify(v);
}
