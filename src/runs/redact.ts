/**
 * Defence in depth for secrets: every string the run writes to the store, a log or the
 * terminal passes through `redact`, which blanks the values of the key variables the study
 * names (providers already avoid echoing keys; this catches what a server might echo back).
 */
/** Variables the providers read a key from when a study names none. */
const DEFAULT_KEY_VARS = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"];

export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: Iterable<string | undefined>) {
    // Very short values would blank ordinary words; real keys are long.
    this.secrets = [...new Set([...secrets].filter((s): s is string => !!s && s.length >= 8))].sort(
      (a, b) => b.length - a.length,
    );
  }

  /** The values of the named variables and of the providers' default key variables. */
  static fromEnv(varNames: Iterable<string | undefined>, env: NodeJS.ProcessEnv = process.env): Redactor {
    const names = new Set([...varNames, ...DEFAULT_KEY_VARS]);
    const values = [...names].flatMap((n) => (n && env[n] ? [env[n], env[n]?.trim()] : []));
    return new Redactor(values);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join("[redacted]");
    return out;
  }
}
