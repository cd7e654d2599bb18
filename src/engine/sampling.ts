import type { Rng } from "./rng.ts";

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature?: number;
  /** Nucleus mass in (0, 1]; 1 = off. */
  topP?: number;
  /** Keep only the k most likely tokens; 0 = off. */
  topK?: number;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
}

/** Index of the largest value (lowest index on ties, so greedy decoding is deterministic). */
export function argmax(x: Float32Array, offset = 0, n = x.length - offset): number {
  let best = 0;
  let bv = x[offset];
  for (let j = 1; j < n; j++) {
    if (x[offset + j] > bv) {
      bv = x[offset + j];
      best = j;
    }
  }
  return best;
}

/** log-softmax of one row, in float64 for stable small probabilities. */
export function logSoftmax(logits: Float32Array, offset: number, V: number): Float64Array {
  const out = new Float64Array(V);
  let mx = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < V; j++) if (logits[offset + j] > mx) mx = logits[offset + j];
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(logits[offset + j] - mx);
  const lse = mx + Math.log(s);
  for (let j = 0; j < V; j++) out[j] = logits[offset + j] - lse;
  return out;
}

/** The k most likely tokens of a log-prob row, most likely first (ties: lower id first). */
export function topK(logprobs: Float64Array, k: number): TokenLogprob[] {
  const kk = Math.min(k, logprobs.length);
  if (kk <= 0) return [];
  // Insertion into a small sorted buffer: O(V·k) with k small (top_logprobs ≤ 20).
  const ids: number[] = [];
  for (let j = 0; j < logprobs.length; j++) {
    const v = logprobs[j];
    if (ids.length === kk && v <= logprobs[ids[kk - 1]]) continue;
    let pos = ids.length;
    while (pos > 0 && logprobs[ids[pos - 1]] < v) pos--;
    ids.splice(pos, 0, j);
    if (ids.length > kk) ids.pop();
  }
  return ids.map((token) => ({ token, logprob: logprobs[token] }));
}

/** Indices of the k largest values of a row, largest first (ties: lower index first). */
function largestK(x: Float32Array, offset: number, V: number, k: number): number[] {
  if (k > 64) {
    const all = Array.from({ length: V }, (_, j) => j);
    all.sort((a, b) => x[offset + b] - x[offset + a] || a - b);
    return all.slice(0, k);
  }
  // A sorted buffer of k: most values fail the first comparison, so this is ~O(V).
  const ids: number[] = [];
  for (let j = 0; j < V; j++) {
    const v = x[offset + j];
    if (ids.length === k && v <= x[offset + ids[k - 1]]) continue;
    let pos = ids.length;
    while (pos > 0 && x[offset + ids[pos - 1]] < v) pos--;
    ids.splice(pos, 0, j);
    if (ids.length > k) ids.pop();
  }
  return ids;
}

/**
 * Tokens that can be in the top-p nucleus, sorted by logit: those with probability ≥ τ
 * where the mass below τ is at most 1 − topP (so the nucleus ends among them). Avoids
 * sorting a 150k vocabulary on every step.
 */
function nucleusCandidates(
  x: Float32Array,
  offset: number,
  V: number,
  temperature: number,
  topP: number,
): { ids: number[]; mass: number } {
  let mx = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < V; j++) if (x[offset + j] > mx) mx = x[offset + j];
  const w = new Float64Array(V);
  let z = 0;
  for (let j = 0; j < V; j++) {
    w[j] = Math.exp((x[offset + j] - mx) / temperature);
    z += w[j];
  }
  let tau = 1e-3;
  for (;;) {
    let below = 0;
    for (let j = 0; j < V; j++) if (w[j] < tau) below += w[j];
    if (below / z <= 1 - topP || tau < 1e-30) break;
    tau *= 1e-3;
  }
  const ids: number[] = [];
  for (let j = 0; j < V; j++) if (w[j] >= tau) ids.push(j);
  ids.sort((a, b) => x[offset + b] - x[offset + a] || a - b);
  // The full normaliser (same max), so the nucleus is measured against the whole distribution.
  return { ids, mass: z };
}

/**
 * Draws one token from a logits row with temperature, top-k and top-p (applied in that
 * order, as HF's logits processors do). Greedy when temperature is 0.
 */
export function sampleToken(
  logits: Float32Array,
  offset: number,
  V: number,
  opts: SamplingOptions,
  rng: Rng,
): number {
  const temperature = opts.temperature ?? 1;
  if (temperature < 0) throw new Error(`temperature must be >= 0, got ${temperature}`);
  if (temperature === 0) return argmax(logits, offset, V);
  const topP = opts.topP ?? 1;
  const k = opts.topK ?? 0;
  if (!(topP > 0 && topP <= 1)) throw new Error(`top_p must be in (0, 1], got ${topP}`);
  let cand: number[] | null = null;
  // Normaliser for the top-p cut: the (top-k-truncated) distribution's, or the full one
  // when only a nucleus candidate set was kept.
  let fullMass: number | null = null;
  if (k > 0 && k < V) cand = largestK(logits, offset, V, k);
  else if (topP < 1) {
    const nc = nucleusCandidates(logits, offset, V, temperature, topP);
    cand = nc.ids;
    fullMass = nc.mass;
  }
  const n = cand === null ? V : cand.length;
  const at = (i: number) => (cand === null ? i : cand[i]);
  let mx = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) mx = Math.max(mx, logits[offset + at(i)]);
  const p = new Float64Array(n);
  let z = 0;
  for (let i = 0; i < n; i++) {
    p[i] = Math.exp((logits[offset + at(i)] - mx) / temperature);
    z += p[i];
  }
  let m = n;
  if (topP < 1) {
    // Smallest prefix (by probability) whose mass reaches top_p; always at least one token.
    // Candidates are sorted here (largestK and nucleusCandidates both sort).
    let cum = 0;
    const norm = fullMass ?? z;
    for (let i = 0; i < n; i++) {
      cum += p[i] / norm;
      if (cum >= topP) {
        m = i + 1;
        break;
      }
    }
    z = 0;
    for (let i = 0; i < m; i++) z += p[i];
  }
  let u = rng.next() * z;
  for (let i = 0; i < m; i++) {
    u -= p[i];
    if (u < 0) return at(i);
  }
  return at(m - 1);
}
