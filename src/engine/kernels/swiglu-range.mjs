/**
 * SwiGLU over elements [i0, i1) of float32 arrays at byte offsets g, u and out of `f32`'s
 * memory: the same expression as ops/elementwise.ts's swiglu (doubles, V8's Math.exp, rounded
 * to float32 on store), so every element is bit-identical to it. Plain JS so that the pool's
 * workers (matmul-worker.mjs) and the calling thread (wasm-matmul.ts) run this one loop.
 */
export function swigluRange(f32, g, u, out, i0, i1) {
  const go = g >>> 2;
  const uo = u >>> 2;
  const oo = out >>> 2;
  for (let i = i0; i < i1; i++) {
    const x = f32[go + i];
    const s = 1 / (1 + Math.exp(-x));
    f32[oo + i] = x * s * f32[uo + i];
  }
}
