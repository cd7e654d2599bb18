/**
 * Deep links into `emlab view` (see the scheme at the top of server.ts). Pure string
 * building, safe to import from the report without pulling in the server.
 */
export interface ViewerLink {
  sample?: { requestId: string; sampleIndex: number };
  model?: string;
  experiment?: string;
  metric?: string;
  min?: number;
  max?: number;
  class?: string;
  q?: string;
  /** Item id to compare across models; needs `experiment`. */
  compare?: string;
}

/** The fragment, starting with `#`: append it to the viewer's URL. */
export function viewerHash(link: ViewerLink): string {
  const p = new URLSearchParams();
  if (link.model) p.set("model", link.model);
  if (link.experiment) p.set("experiment", link.experiment);
  if (link.metric) p.set("metric", link.metric);
  if (link.min !== undefined) p.set("min", String(link.min));
  if (link.max !== undefined) p.set("max", String(link.max));
  if (link.class) p.set("class", link.class);
  if (link.q) p.set("q", link.q);
  if (link.compare) p.set("compare", link.compare);
  if (link.sample) p.set("sample", `${link.sample.requestId}:${link.sample.sampleIndex}`);
  return `#${p.toString()}`;
}

/** Reads a `sample=` value: the request id may itself contain ':', the index is after the last one. */
export function parseSampleRef(value: string): { requestId: string; sampleIndex: number } | null {
  const at = value.lastIndexOf(":");
  if (at <= 0) return null;
  const idx = value.slice(at + 1);
  if (!/^\d+$/.test(idx)) return null;
  return { requestId: value.slice(0, at), sampleIndex: Number(idx) };
}
