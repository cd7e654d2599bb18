/** Seconds of the fastest of `reps` runs of `f` (the benches' "best of N"). */
export function best(reps: number, f: () => void): number {
  let b = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f();
    b = Math.min(b, performance.now() - t0);
  }
  return b / 1000;
}
