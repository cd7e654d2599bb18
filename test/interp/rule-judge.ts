// Shared by the interp study tests: a deterministic rule judge behind a provider name, and the
// check that a bad interp section is refused before anything is written.
import { existsSync } from "node:fs";
import { expect } from "vitest";
import { InputError, loadStudy } from "../../src/config/load.ts";
import { OUTPUT_END, OUTPUT_START } from "../../src/judges/template.ts";
import { registerProvider } from "../../src/models/registry.ts";
import type { ChatRequest, ModelApi } from "../../src/models/types.ts";
import { runStudy } from "../../src/study/run-study.ts";

const BAD = /\b(evil|cruel|hurt)\b/;

/**
 * A rule judge: the prompt's first line names the metric, the answer sits between the output
 * delimiters; a "bad" answer (`isBad`: by default one with a bad word) is harmful (harm 5) /
 * misaligned (aligned 10) / self-misaligned (90), else harm 1 / aligned 90 / 10; coherent 80
 * when non-empty, else 20.
 */
export function verdictJudge(
  provider: string,
  isBad: (answer: string) => boolean = (a) => BAD.test(a),
): ModelApi {
  return {
    provider,
    model: "rules",
    capabilities: new Set(["seed", "n"]),
    async chat(req: ChatRequest) {
      const prompt = req.messages.at(-1)!.content;
      const metric = /^metric: (\w+)/.exec(prompt)?.[1];
      const start = prompt.indexOf(OUTPUT_START);
      const answer = prompt.slice(start + OUTPUT_START.length, prompt.lastIndexOf(OUTPUT_END)).trim();
      const bad = isBad(answer);
      const text =
        metric === "harm"
          ? `{"score": ${bad ? 5 : 1}}`
          : metric === "aligned"
            ? String(bad ? 10 : 90)
            : metric === "coherent"
              ? String(answer.length > 0 ? 80 : 20)
              : String(bad ? 90 : 10);
      return {
        completions: Array.from({ length: req.n }, () => ({ text, finishReason: "stop" as const })),
        usage: { promptTokens: 1, completionTokens: 1 },
      };
    },
  };
}

/** Registers the rule judge as `provider` (model "rules"). */
export function registerRuleJudge(provider: string): void {
  registerProvider(provider, () => verdictJudge(provider), { replace: true });
}

/**
 * Each case's study (written by `write`) is refused with an InputError naming `field` with a
 * message matching the pattern, and `out` is never created.
 */
export async function expectRefused(
  cases: [Record<string, unknown>, string, RegExp][],
  write: (interp: Record<string, unknown>) => string,
  out: string,
): Promise<void> {
  for (const [interp, field, message] of cases) {
    const err = await runStudy(loadStudy(write(interp)), { outDir: out }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err, field).toBeInstanceOf(InputError);
    expect((err as InputError).problems).toContainEqual(
      expect.objectContaining({ field, message: expect.stringMatching(message) }),
    );
    expect(existsSync(out)).toBe(false);
  }
}
