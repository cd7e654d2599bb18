import { type JudgeReading, readNonNumericVerdict } from "./reading.ts";

/**
 * The fallback for judges without logprobs (e.g. the Anthropic API): the 0-100 number the
 * judge wrote. Results flag these scores (method "text") because they are a point answer,
 * not the expectation the logprob method computes. A reply with no number in range, or
 * with two different numbers, is "unparsed" — never guessed.
 */
export function readTextScore(text: string, max = 100): JudgeReading {
  const raw = JSON.stringify({ text });
  const verdict = readNonNumericVerdict(text);
  if (verdict) return { score: null, method: verdict, raw };
  // "80/100" and "80 out of 100" name the scale, not a second score.
  const cleaned = text.replace(new RegExp(`\\s*(?:/|out of)\\s*${max}\\b`, "gi"), "");
  const nums = [...cleaned.matchAll(/(?<![\w.])[+-]?\d+(?:\.\d+)?(?!\w|\.\d)/g)].map((m) => Number(m[0]));
  const distinct = [...new Set(nums)];
  if (distinct.length !== 1 || distinct[0] < 0 || distinct[0] > max)
    return { score: null, method: "unparsed", raw };
  return { score: distinct[0], method: "text", raw };
}
