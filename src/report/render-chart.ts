import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { SafeHtml } from "./escape.ts";

export interface Chart {
  /** File-name-safe identifier, also the PNG name (`<name>.png`). */
  name: string;
  title: string;
  svg: string;
}

/**
 * Compiles a vega-lite spec and renders it headless to SVG (`renderer: "none"`: no canvas,
 * no DOM, no network — vega's loader is replaced by one that refuses every URL).
 */
export async function renderChart(name: string, title: string, spec: TopLevelSpec): Promise<Chart> {
  const compiled = compile(spec).spec;
  const loader = vega.loader();
  loader.load = async (uri: string) => {
    throw new Error(`chart ${name}: refusing to load ${uri} (the report makes no network requests)`);
  };
  const view = new vega.View(vega.parse(compiled), { renderer: "none", loader });
  try {
    const svg = scopeIds(name, await view.toSVG());
    assertSafeSvg(name, svg);
    return { name, title, svg };
  } finally {
    view.finalize();
  }
}

/**
 * Vega numbers gradient and clip ids from a process-wide counter, so the same chart gets
 * different ids on a second render and two charts could collide on one page: rename them
 * after the chart, in order of appearance.
 */
function scopeIds(name: string, svg: string): string {
  const ids = [...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
  let out = svg;
  ids.forEach((id, i) => {
    const scoped = `${name}-${i + 1}`;
    out = out.replaceAll(`id="${id}"`, `id="${scoped}"`).replaceAll(`url(#${id})`, `url(#${scoped})`);
  });
  return out;
}

/**
 * Vega escapes the text it writes, but the SVG goes into the page unescaped, so it is
 * checked anyway: no scripts, event handlers, foreign objects or links may appear.
 */
export function assertSafeSvg(name: string, svg: string): void {
  const bad = [/<script/i, /\son[a-z]+\s*=/i, /<foreignObject/i, /javascript:/i, /<a[\s>]/i, /\bhref\s*=/i];
  for (const re of bad) if (re.test(svg)) throw new Error(`chart ${name}: unsafe SVG (${re})`);
  if (!svg.startsWith("<svg") || !svg.trimEnd().endsWith("</svg>"))
    throw new Error(`chart ${name}: renderer did not return one <svg> element`);
}

export const chartMarkup = (chart: Chart): SafeHtml => new SafeHtml(chart.svg);

/** PNG of a chart via resvg, at 2x for print; text uses the system's sans-serif font. */
export function chartPng(chart: Chart): Buffer {
  return new Resvg(chart.svg, {
    fitTo: { mode: "zoom", value: 2 },
    font: { defaultFontFamily: "DejaVu Sans" },
  })
    .render()
    .asPng();
}
