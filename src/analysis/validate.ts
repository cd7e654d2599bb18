/** Input checks shared by the statistics: errors name the argument and the bad index. */

export function checkFiniteArray(xs: readonly number[], name: string): void {
  if (!Array.isArray(xs)) throw new TypeError(`${name} must be an array of numbers`);
  for (let i = 0; i < xs.length; i++) {
    if (typeof xs[i] !== "number" || !Number.isFinite(xs[i])) {
      throw new RangeError(`${name}[${i}] must be a finite number, got ${String(xs[i])}`);
    }
  }
}

export function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
}

export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}
