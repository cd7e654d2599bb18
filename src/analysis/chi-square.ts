import { chiSquareSf } from "./special.ts";

export type ChiSquareOptions = {
  /**
   * Yates' continuity correction when df = 1 (a 2×2 table), as scipy.stats.chi2_contingency
   * does by default (true).
   */
  correction?: boolean;
};

export type ChiSquare = {
  statistic: number;
  df: number;
  p: number;
  /** Expected counts under independence (row total × column total / grand total). */
  expected: number[][];
  /** True when any expected count is below 5, where the chi-square approximation is rough. */
  smallExpected: boolean;
};

/**
 * Chi-square test of independence on an r×c contingency table of counts, matching
 * scipy.stats.chi2_contingency with its defaults (Yates correction for df = 1: each
 * observed count moves toward its expected count by min(0.5, |O − E|)). A table with df = 0
 * gives statistic 0 and p 1, as scipy. Throws when an expected count is zero (a row or
 * column of zeros), as scipy does.
 */
export function chiSquare(table: readonly (readonly number[])[], opts: ChiSquareOptions = {}): ChiSquare {
  if (table.length === 0) throw new RangeError("chiSquare: table must be a non-empty array of rows");
  const cols = table[0]!.length;
  if (cols === 0) throw new RangeError("chiSquare: table rows must not be empty");
  for (let i = 0; i < table.length; i++) {
    const row = table[i]!;
    if (row.length !== cols)
      throw new RangeError(`chiSquare: table[${i}] has ${row.length} cells, expected ${cols}`);
    for (let j = 0; j < cols; j++) {
      const v = row[j]!;
      if (!Number.isFinite(v) || v < 0)
        throw new RangeError(`chiSquare: table[${i}][${j}] must be a count >= 0, got ${v}`);
    }
  }
  const rowSums = table.map((row) => row.reduce((a, b) => a + b, 0));
  const colSums = Array.from({ length: cols }, (_, j) => table.reduce((a, row) => a + row[j]!, 0));
  const total = rowSums.reduce((a, b) => a + b, 0);
  const expected = table.map((_, i) => colSums.map((c) => (rowSums[i]! * c) / total));
  for (let i = 0; i < table.length; i++) {
    for (let j = 0; j < cols; j++) {
      if (!(expected[i]![j]! > 0)) {
        throw new RangeError(`chiSquare: expected count at [${i}][${j}] is zero (a row or column sums to 0)`);
      }
    }
  }
  // scipy: dof = size − sum(shape) + ndim − 1.
  const df = table.length * cols - table.length - cols + 1;
  const smallExpected = expected.some((row) => row.some((e) => e < 5));
  if (df === 0) return { statistic: 0, df, p: 1, expected, smallExpected };
  const correct = (opts.correction ?? true) && df === 1;
  let statistic = 0;
  for (let i = 0; i < table.length; i++) {
    for (let j = 0; j < cols; j++) {
      const o = table[i]![j]!;
      const e = expected[i]![j]!;
      let obs = o;
      if (correct) {
        const diff = e - o;
        obs = o + Math.sign(diff) * Math.min(0.5, Math.abs(diff));
      }
      statistic += ((obs - e) * (obs - e)) / e;
    }
  }
  return { statistic, df, p: chiSquareSf(statistic, df), expected, smallExpected };
}
