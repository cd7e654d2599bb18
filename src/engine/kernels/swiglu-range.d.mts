export function swigluRange(
  f32: Float32Array,
  g: number,
  u: number,
  out: number,
  i0: number,
  i1: number,
): void;
