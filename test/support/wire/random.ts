// Seeded hashing and PRNG for the wire server: every "random" thing it does (generated
// words, logprobs, injected faults) comes from here, so a run is reproducible.

/** cyrb128: a fast 128-bit string hash, used to seed sfc32 from arbitrary keys. */
function cyrb128(str: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044961);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044961);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** A uniform [0, 1) generator. */
export type Rng = () => number;

/** sfc32 seeded from the hash of `key`: same key, same stream. */
export function rngFromKey(key: string): Rng {
  let [a, b, c, d] = cyrb128(key);
  return () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** Short lowercase hex digest of a key, for ids and fingerprints. */
export function hexOf(key: string, chars = 24): string {
  let out = "";
  let round = 0;
  while (out.length < chars) {
    for (const h of cyrb128(`${round}:${key}`)) out += h.toString(16).padStart(8, "0");
    round++;
  }
  return out.slice(0, chars);
}

/** Integer in [lo, hi] inclusive. */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}
