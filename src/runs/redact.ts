/**
 * Defence in depth for secrets: every string the run writes to the store, the response cache, a
 * log or the terminal passes through the run's `Redactor`, which blanks the values of the key
 * variables the study names (`api_key_env`, and the variables its headers reference as
 * `${env:NAME}`). Providers already avoid echoing keys; this catches what a server echoes back
 * — in an error message, or inside an answer (text, logprob tokens, response id).
 *
 * Answers are redacted once, where they enter the run: the scheduler and the batch collector
 * pass every provider response through `redactResponse` before it is stored or cached (and a
 * cache hit through `redactCompletion`, for entries older emlab versions wrote), so everything
 * read back from the store — results.json, report.html, the viewer's index — is already clean.
 */
import { headerEnvNames } from "../config/secrets.ts";
import type { ChatResponse, Completion, TokenLogprob } from "../models/types.ts";

/** Variables the providers read a key from when a study names none. */
const DEFAULT_KEY_VARS = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY"];

const MARK = "[redacted]";

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

  /** A study's redactor: its models' key variables and the variables their headers reference. */
  static forModels(
    models: ReadonlyArray<{ api_key_env?: string; headers?: Record<string, string> }>,
    env: NodeJS.ProcessEnv = process.env,
  ): Redactor {
    return Redactor.fromEnv(
      models.flatMap((m) => [m.api_key_env, ...headerEnvNames(m.headers)]),
      env,
    );
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join(MARK);
    return out;
  }

  /** A provider's response as it may be stored and cached. */
  redactResponse(r: ChatResponse): ChatResponse {
    if (this.secrets.length === 0) return r;
    const out: ChatResponse = { ...r, completions: r.completions.map((c) => this.redactCompletion(c)) };
    if (r.responseId !== undefined) out.responseId = this.redact(r.responseId);
    return out;
  }

  /**
   * A completion with every secret blanked in its text, finish reason and logprobs. A key that an
   * answer spells over several tokens is found in the tokens joined: each token overlapping it
   * loses its part of it (the first gets the mark), so the tokens still join to the text, and
   * the alternatives at those positions are blanked too.
   */
  redactCompletion(c: Completion): Completion {
    if (this.secrets.length === 0) return c;
    const out: Completion = { ...c, text: this.redact(c.text), finishReason: this.redact(c.finishReason) };
    if (c.logprobs) out.logprobs = this.redactTokens(c.logprobs);
    return out;
  }

  private redactTokens(tokens: TokenLogprob[]): TokenLogprob[] {
    const joined = tokens.map((t) => t.token).join("");
    // 0 outside a secret, 1 inside, 2 where one starts.
    const cover = new Uint8Array(joined.length);
    let any = false;
    for (const s of this.secrets) {
      for (let i = joined.indexOf(s); i >= 0; i = joined.indexOf(s, i + s.length)) {
        if (cover[i] === 0) cover[i] = 2;
        for (let j = i + 1; j < i + s.length; j++) if (cover[j] === 0) cover[j] = 1;
        any = true;
      }
    }
    let at = 0;
    return tokens.map((t) => {
      const start = at;
      at += t.token.length;
      let hit = false;
      let token = "";
      for (let k = start; k < at; k++) {
        if (cover[k] === 0) token += joined[k];
        else {
          hit = true;
          if (cover[k] === 2) token += MARK;
        }
      }
      if (!any || !hit) {
        if (!t.top?.some((a) => this.redact(a.token) !== a.token)) return t;
        return { ...t, top: t.top.map((a) => ({ ...a, token: this.redact(a.token) })) };
      }
      // Alternatives where a key was spelled may hold pieces of it.
      const top = t.top?.map((a) => ({ ...a, token: a.token === t.token ? token : MARK }));
      return top ? { ...t, token, top } : { ...t, token };
    });
  }
}
