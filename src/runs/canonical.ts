import { createHash } from "node:crypto";

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) if (v[k] !== undefined) out[k] = v[k];
      return out;
    }
    return v;
  });
}

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A 31-bit seed derived from a parent seed and labels: stable across runs and platforms. */
export function deriveSeed(seed: number, ...labels: Array<string | number>): number {
  return Number.parseInt(sha256(`${seed}\u0000${labels.join("\u0000")}`).slice(0, 8), 16) & 0x7fffffff;
}
