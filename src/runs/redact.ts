/**
 * Defence in depth for secrets: every string the run writes to the store, a log or the
 * terminal passes through `redact`, which blanks the values of the key variables the study
 * names (providers already avoid echoing keys; this catches what a server might echo back).
 */
export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: Iterable<string | undefined>) {
    // Very short values would blank ordinary words; real keys are long.
    this.secrets = [...new Set([...secrets].filter((s): s is string => !!s && s.length >= 8))].sort(
      (a, b) => b.length - a.length,
    );
  }

  static fromEnv(varNames: Iterable<string | undefined>, env: NodeJS.ProcessEnv = process.env): Redactor {
    return new Redactor([...varNames].map((n) => (n ? env[n] : undefined)));
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join("[redacted]");
    return out;
  }
}
