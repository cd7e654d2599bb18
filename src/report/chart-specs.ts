import type { TopLevelSpec } from "vega-lite";
import { PERSONA_CLASSES, type PersonaClass } from "../analysis/index.ts";

/**
 * Vega-lite specs of the report's charts: pure functions from figures to specs, so each
 * chart can be checked without rendering. Fonts are the generic "sans-serif" family so the
 * page needs no font files.
 */

const CONFIG = {
  font: "sans-serif",
  view: { stroke: "#ccc" },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
} as const;

/** Persona classes in a fixed order with fixed colours, so every chart reads the same. */
export const CLASS_COLOURS: Record<PersonaClass, string> = {
  aligned: "#1b9e77",
  coherent: "#d95f02",
  inverted: "#7570b3",
  other: "#999999",
};

export interface RateBar {
  model: string;
  rate: number;
  low: number;
  high: number;
  n: number;
}

/** One bar per model with its 95% interval as an error bar; y is a share in [0, 1]. */
export function rateBarsSpec(title: string, yTitle: string, rows: RateBar[]): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title,
    config: CONFIG,
    width: Math.max(160, 70 * rows.length),
    height: 220,
    data: { values: rows },
    layer: [
      {
        mark: { type: "bar", color: "#4c78a8" },
        encoding: {
          x: { field: "model", type: "nominal", sort: null, title: "model", axis: { labelAngle: 0 } },
          y: { field: "rate", type: "quantitative", title: yTitle, scale: { domain: [0, 1] } },
        },
      },
      {
        mark: { type: "rule", color: "#222" },
        encoding: {
          x: { field: "model", type: "nominal", sort: null },
          y: { field: "low", type: "quantitative" },
          y2: { field: "high" },
        },
      },
    ],
  };
}

export interface ScatterPoint {
  model: string;
  harm: number;
  self: number;
  class: string;
}

/**
 * Harm level (x) against self-reported misalignment (y), one point per model, coloured by
 * class, with the classification cut-offs as dashed lines.
 */
export function harmVsSelfSpec(
  points: ScatterPoint[],
  xTitle: string,
  yTitle: string,
  cuts: { harm: number; self: number },
): TopLevelSpec {
  const classes = [...PERSONA_CLASSES];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: "Harm vs self-assessment",
    config: CONFIG,
    width: 360,
    height: 300,
    data: { values: points },
    layer: [
      {
        mark: { type: "rule", color: "#aaa", strokeDash: [4, 3] },
        encoding: { x: { datum: cuts.harm, type: "quantitative" } },
      },
      {
        mark: { type: "rule", color: "#aaa", strokeDash: [4, 3] },
        encoding: { y: { datum: cuts.self, type: "quantitative" } },
      },
      {
        mark: { type: "point", filled: true, size: 120 },
        encoding: {
          x: { field: "harm", type: "quantitative", title: xTitle, scale: { domain: [0, 1] } },
          y: { field: "self", type: "quantitative", title: yTitle, scale: { domain: [0, 1] } },
          color: {
            field: "class",
            type: "nominal",
            title: "persona class",
            scale: { domain: classes, range: classes.map((c) => CLASS_COLOURS[c]) },
          },
        },
      },
      {
        mark: { type: "text", dx: 8, align: "left", fontSize: 11 },
        encoding: {
          x: { field: "harm", type: "quantitative" },
          y: { field: "self", type: "quantitative" },
          text: { field: "model" },
        },
      },
    ],
  };
}

export interface ErrorByActual {
  model: string;
  actual: number;
  error: number;
  n: number;
}

/** Mean prediction error (predicted − actual) by the judge's actual 1-5 score, a line per model. */
export function predictionErrorSpec(rows: ErrorByActual[]): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: "Score prediction: error by actual score",
    config: CONFIG,
    width: 360,
    height: 220,
    data: { values: rows },
    layer: [
      {
        mark: { type: "rule", color: "#999", strokeDash: [4, 3] },
        encoding: { y: { datum: 0, type: "quantitative" } },
      },
      {
        mark: { type: "line", point: true },
        encoding: {
          x: {
            field: "actual",
            type: "quantitative",
            title: "actual score (judge, 1-5)",
            // Half a score of room either side so points at 1 and 5 are not cut by the frame.
            scale: { domain: [0.5, 5.5], nice: false },
            axis: { values: [1, 2, 3, 4, 5], format: "d" },
          },
          y: {
            field: "error",
            type: "quantitative",
            title: "mean error (predicted − actual)",
            scale: { domain: [-4.5, 4.5], nice: false },
          },
          color: { field: "model", type: "nominal", title: "model" },
        },
      },
    ],
  };
}

export interface HeatCell {
  rater: string;
  rated: string;
  error: number | null;
  n: number;
}

/** Cross-rating: rater (rows) × rated model (columns), colour = mean error, labelled. */
export function crossRatingSpec(cells: HeatCell[]): TopLevelSpec {
  const span = Math.max(1, ...cells.map((c) => Math.abs(c.error ?? 0)));
  const labelled = cells.map((c) => ({ ...c, label: c.error === null ? "–" : c.error.toFixed(2) }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: "Cross-rating: mean error (predicted − actual)",
    config: CONFIG,
    data: { values: labelled },
    width: { step: 70 },
    height: { step: 36 },
    encoding: {
      x: { field: "rated", type: "nominal", title: "rated model", sort: null, axis: { labelAngle: 0 } },
      y: { field: "rater", type: "nominal", title: "rater", sort: null },
    },
    layer: [
      {
        mark: "rect",
        encoding: {
          color: {
            field: "error",
            type: "quantitative",
            title: "mean error",
            scale: { scheme: "redblue", domain: [-span, span], reverse: true },
          },
        },
      },
      { mark: { type: "text", fontSize: 11 }, encoding: { text: { field: "label" } } },
    ],
  };
}
