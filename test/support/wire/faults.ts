// Fault injection for the generation endpoints: one PRNG draw per request, in arrival
// order, so the same seed and the same request sequence give the same faults.

import type { FaultKind, WireFaults } from "./context.ts";
import { type Rng, rngFromKey } from "./random.ts";

export interface FaultDecision {
  fault: FaultKind | null;
  delayMs: number;
}

export class FaultInjector {
  private faults: Required<WireFaults>;
  private rng: Rng;
  private queued: FaultKind[] = [];

  constructor(initial: WireFaults = {}) {
    this.faults = {
      rate429: 0,
      rate500: 0,
      rate529: 0,
      rateDrop: 0,
      rateTruncate: 0,
      slowRate: 0,
      slowMs: 0,
      retryAfterS: 1,
      seed: 0,
    };
    this.rng = rngFromKey("faults:0");
    this.set(initial);
  }

  /** Merge new settings; a new seed restarts the fault stream. */
  set(update: WireFaults): void {
    for (const [k, v] of Object.entries(update) as Array<[keyof WireFaults, number | undefined]>) {
      if (v === undefined) continue;
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
        throw new Error(`wire-server setFaults: '${k}' must be a finite number >= 0, got ${String(v)}`);
      }
      if (k.startsWith("rate") && v > 1)
        throw new Error(`wire-server setFaults: '${k}' must be in [0, 1], got ${v}`);
      this.faults[k] = v;
    }
    const { rate429, rate500, rate529, rateDrop, rateTruncate } = this.faults;
    if (rate429 + rate500 + rate529 + rateDrop + rateTruncate > 1) {
      throw new Error(
        "wire-server setFaults: rate429 + rate500 + rate529 + rateDrop + rateTruncate must not exceed 1",
      );
    }
    if (update.seed !== undefined) this.restart();
  }

  get current(): Readonly<Required<WireFaults>> {
    return { ...this.faults };
  }

  /** Force the next generation requests to fail this way, in order, before any random draw. */
  queue(kinds: FaultKind[]): void {
    this.queued.push(...kinds);
  }

  /** Restart the PRNG stream from the seed and forget queued faults. */
  restart(): void {
    this.rng = rngFromKey(`faults:${this.faults.seed}`);
    this.queued = [];
  }

  decide(): FaultDecision {
    const queued = this.queued.shift();
    if (queued !== undefined) return { fault: queued, delayMs: 0 };
    const u = this.rng();
    const v = this.rng();
    const f = this.faults;
    // Consecutive slices of [0, 1): drop, 429, 500, 529, truncate, then success (truncate comes
    // last so that adding it left the sequences of the older faults unchanged for a given seed).
    const slices: Array<[FaultKind, number]> = [
      ["drop", f.rateDrop],
      ["429", f.rate429],
      ["500", f.rate500],
      ["529", f.rate529],
      ["truncate", f.rateTruncate],
    ];
    let fault: FaultKind | null = null;
    let edge = 0;
    for (const [kind, rate] of slices) {
      edge += rate;
      if (u < edge) {
        fault = kind;
        break;
      }
    }
    return { fault, delayMs: fault === null && v < f.slowRate ? f.slowMs : 0 };
  }
}
