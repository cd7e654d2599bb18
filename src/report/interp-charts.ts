import type { TopLevelSpec } from "vega-lite";
import type { InterpResults } from "../results/interp.ts";

/**
 * Vega-lite specs of the interp charts (pure functions from results.json's `interp` block):
 * probe accuracy and AUC by layer, persona-direction norm by layer, steering rates against
 * alpha (direction vs random control), ablation harmful rates, re-alignment rates by step,
 * emergent-alignment rates and projections by round. Every point carries its 95%
 * interval as a rule when it has one.
 */

const SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";
const CONFIG = {
  font: "sans-serif",
  view: { stroke: "#ccc" },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 400 },
} as const;

interface Point {
  x: number;
  y: number;
  low: number;
  high: number;
  series: string;
  dash: string;
}

/** Lines by series (colour) and dash, with interval rules; y is a share in [0, 1] unless `free`. */
function linesSpec(title: string, xTitle: string, yTitle: string, rows: Point[], free = false): TopLevelSpec {
  // Layers are integers: whole-number ticks only.
  const axis =
    xTitle === "layer" || xTitle === "round"
      ? { values: [...new Set(rows.map((r) => r.x))].sort((a, b) => a - b), format: "d" }
      : {};
  const x = { field: "x", type: "quantitative", title: xTitle, axis } as const;
  return {
    $schema: SCHEMA,
    title,
    config: CONFIG,
    width: 360,
    height: 220,
    data: { values: rows },
    layer: [
      {
        mark: { type: "line" },
        encoding: {
          x,
          y: {
            field: "y",
            type: "quantitative",
            title: yTitle,
            ...(free ? {} : { scale: { domain: [0, 1] } }),
          },
          color: { field: "series", type: "nominal", title: "series" },
          strokeDash: {
            field: "dash",
            type: "nominal",
            title: "measure",
            legend: { symbolType: "stroke", symbolStrokeColor: "#333" },
          },
        },
      },
      {
        mark: { type: "point", filled: true },
        encoding: {
          x,
          y: { field: "y", type: "quantitative" },
          color: { field: "series", type: "nominal" },
        },
      },
      {
        mark: { type: "rule" },
        encoding: {
          x,
          y: { field: "low", type: "quantitative" },
          y2: { field: "high" },
          color: { field: "series", type: "nominal" },
        },
      },
    ],
  };
}

const point = (
  x: number,
  y: number | null,
  ci: { low: number; high: number } | null,
  series: string,
  dash: string,
): Point[] => (y === null ? [] : [{ x, y, low: ci?.low ?? y, high: ci?.high ?? y, series, dash }]);

export function probeLayersSpec(p: NonNullable<InterpResults["probes"]>): TopLevelSpec | null {
  const rows = Object.entries(p.models).flatMap(([model, m]) =>
    (["harm", "self"] as const).flatMap((probe) =>
      m[probe].layers.flatMap((l) => [
        ...point(l.layer, l.accuracy, l.accuracy_ci, `${model} · ${probe}`, "accuracy"),
        ...point(l.layer, l.auc, l.auc_ci, `${model} · ${probe}`, "AUC"),
      ]),
    ),
  );
  return rows.length ? linesSpec("Probes: CV accuracy and AUC by layer", "layer", "score", rows) : null;
}

export function directionNormsSpec(d: NonNullable<InterpResults["directions"]>): TopLevelSpec | null {
  const rows = Object.entries(d.models).flatMap(([model, m]) =>
    m.layers.flatMap((l) => point(l.layer, l.norm, null, model, "norm")),
  );
  return rows.length ? linesSpec("Persona directions: norm by layer", "layer", "norm", rows, true) : null;
}

export function steeringSpec(s: NonNullable<InterpResults["steering"]>): TopLevelSpec | null {
  const baseline = s.conditions.find((c) => c.kind === "baseline");
  const rows = s.conditions
    .filter((c) => c.kind === "steer" && c.alpha !== null)
    .flatMap((c) => {
      const series = `${c.vector} · layers ${c.layers === "all" ? "all" : (c.layers ?? []).join("+")}`;
      return [
        ...point(c.alpha!, c.harmful.rate, c.harmful.ci95, series, "harmful"),
        ...point(c.alpha!, c.coherent.rate, c.coherent.ci95, series, "coherent"),
      ];
    });
  // The unsteered model sits at alpha 0 of every series.
  if (baseline)
    for (const series of new Set(rows.map((r) => r.series))) {
      rows.push(...point(0, baseline.harmful.rate, baseline.harmful.ci95, series, "harmful"));
      rows.push(...point(0, baseline.coherent.rate, baseline.coherent.ci95, series, "coherent"));
    }
  rows.sort((a, b) => a.series.localeCompare(b.series) || a.dash.localeCompare(b.dash) || a.x - b.x);
  return rows.length
    ? linesSpec("Steering: harmful and coherent rates by alpha, direction vs random", "alpha", "rate", rows)
    : null;
}

export function ablationSpec(a: NonNullable<InterpResults["ablation"]>): TopLevelSpec | null {
  const rows = a.conditions.flatMap((c) =>
    c.harmful.rate === null
      ? []
      : [
          {
            condition: c.name,
            rate: c.harmful.rate,
            low: c.harmful.ci95?.low ?? c.harmful.rate,
            high: c.harmful.ci95?.high ?? c.harmful.rate,
          },
        ],
  );
  if (!rows.length) return null;
  const x = {
    field: "condition",
    type: "nominal",
    sort: null,
    title: "condition",
    axis: { labelAngle: -30 },
  } as const;
  return {
    $schema: SCHEMA,
    title: `Ablation (${a.mode}): harmful rate, direction vs random`,
    config: CONFIG,
    width: Math.max(200, 80 * rows.length),
    height: 220,
    data: { values: rows },
    layer: [
      {
        mark: { type: "bar", color: "#4c78a8" },
        encoding: {
          x,
          y: { field: "rate", type: "quantitative", title: "harmful", scale: { domain: [0, 1] } },
        },
      },
      {
        mark: { type: "rule", color: "#222" },
        encoding: { x, y: { field: "low", type: "quantitative" }, y2: { field: "high" } },
      },
    ],
  };
}

/** Re-alignment: harmful, coherent and self-report rates by training step; the base model's as dashed lines. */
export function realignmentSpec(r: NonNullable<InterpResults["realignment"]>): TopLevelSpec | null {
  const rows = r.checkpoints.flatMap((c) => [
    ...point(c.step, c.harmful.rate, c.harmful.ci95, "harmful", r.model),
    ...point(c.step, c.coherent.rate, c.coherent.ci95, "coherent", r.model),
    ...(c.self_report
      ? point(c.step, c.self_report.rate, c.self_report.ci95, "self-report (misaligned picks)", r.model)
      : []),
  ]);
  // The base model's figures are flat lines over the same steps (no intervals, to keep it readable).
  const b = r.base_eval;
  if (b && r.base)
    for (const c of r.checkpoints) {
      rows.push(...point(c.step, b.harmful.rate, null, "harmful", `base ${r.base}`));
      if (b.self_report)
        rows.push(
          ...point(c.step, b.self_report.rate, null, "self-report (misaligned picks)", `base ${r.base}`),
        );
    }
  return rows.length
    ? linesSpec(
        `Re-alignment of ${r.model} on ${r.dataset}: rates by training step`,
        "training step",
        "rate",
        rows,
      )
    : null;
}

/** Emergent alignment: the unsteered model's harmful and coherent rates and the direction's AUC by round. */
export function emergentRatesSpec(e: NonNullable<InterpResults["emergent_alignment"]>): TopLevelSpec | null {
  const rows = e.rounds.flatMap((r) => [
    ...point(r.round, r.harmful.rate, r.harmful.ci95, "harmful", "unsteered model"),
    ...point(r.round, r.coherent.rate, r.coherent.ci95, "coherent", "unsteered model"),
    ...point(
      r.round,
      r.probe?.auc ?? null,
      null,
      `AUC harmful vs safe (layer ${e.probe_layer})`,
      "direction",
    ),
  ]);
  return rows.length
    ? linesSpec(`Emergent-alignment loop on ${e.model}: rates by round`, "round", "rate / AUC", rows)
    : null;
}

/** Emergent alignment: mean projection of the unsteered model's answers on the direction, by round. */
export function emergentProjectionSpec(
  e: NonNullable<InterpResults["emergent_alignment"]>,
): TopLevelSpec | null {
  const rows = e.rounds.flatMap((r) =>
    r.probe
      ? [
          ...point(r.round, r.probe.mean, null, "all answers", "projection"),
          ...point(r.round, r.probe.mean_harmful, null, "harmful answers", "projection"),
          ...point(r.round, r.probe.mean_safe, null, "safe answers", "projection"),
        ]
      : [],
  );
  return rows.length
    ? linesSpec(
        `Emergent-alignment loop: projection on the persona direction (layer ${e.probe_layer}) by round`,
        "round",
        "mean projection",
        rows,
        true,
      )
    : null;
}
