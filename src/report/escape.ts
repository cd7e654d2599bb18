/**
 * The one HTML-escaping function of the report. Every string that came from a model, a
 * prompt file or the study passes through it: model outputs are adversarial text.
 * `'` and `"` are escaped too, so an escaped string is safe inside a quoted attribute.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Markup that is already safe (built by `html` or a checked chart SVG); never wrap untrusted text. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Slot = SafeHtml | string | number | null | undefined | readonly Slot[];

function slot(v: Slot): string {
  if (v === null || v === undefined) return "";
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(slot).join("");
  return escapeHtml(String(v));
}

/**
 * Tagged template for report markup: every interpolated value is escaped unless it is
 * already SafeHtml, so forgetting to escape is not possible by construction.
 */
export function html(strings: TemplateStringsArray, ...values: Slot[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += slot(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}
