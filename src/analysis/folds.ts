import { seededRandom, shuffleInPlace } from "./random.ts";

export type Fold = { train: number[]; test: number[] };

/**
 * Seeded stratified k-fold split: each class's indices are shuffled with `seed` and dealt
 * round-robin over the folds, continuing from where the previous class stopped so the folds
 * also stay within one sample of each other in size. Every fold holds ⌊c/k⌋ or ⌈c/k⌉ of each
 * class of size c. Returns k folds of sorted `test` indices and the complementary `train`.
 * Labels may be any strings or numbers.
 */
export function stratifiedKFold(labels: readonly (string | number)[], k: number, seed: number): Fold[] {
  if (!Array.isArray(labels)) throw new TypeError("stratifiedKFold: labels must be an array");
  if (!Number.isInteger(k) || k < 2)
    throw new RangeError(`stratifiedKFold: k must be an integer >= 2, got ${k}`);
  if (k > labels.length)
    throw new RangeError(`stratifiedKFold: k=${k} exceeds the number of samples (${labels.length})`);
  const byClass = new Map<string | number, number[]>();
  labels.forEach((l, i) => {
    if (typeof l !== "string" && typeof l !== "number")
      throw new TypeError(`stratifiedKFold: labels[${i}] must be a string or number`);
    const list = byClass.get(l);
    if (list) list.push(i);
    else byClass.set(l, [i]);
  });
  const rng = seededRandom(seed);
  // Classes in a fixed order (sorted by key) so the split does not depend on label order.
  const classes = [...byClass.keys()].sort((a, b) => String(a).localeCompare(String(b)));
  const tests: number[][] = Array.from({ length: k }, () => []);
  let next = 0;
  for (const c of classes) {
    for (const i of shuffleInPlace([...byClass.get(c)!], rng)) {
      tests[next]!.push(i);
      next = (next + 1) % k;
    }
  }
  return tests.map((test) => {
    const inTest = new Set(test);
    return {
      test: [...test].sort((a, b) => a - b),
      train: labels.map((_, i) => i).filter((i) => !inTest.has(i)),
    };
  });
}
