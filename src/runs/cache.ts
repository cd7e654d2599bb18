import { mkdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import type { ChatMessage, Completion, SamplingParams } from "../models/types.ts";
import { canonicalJson, sha256 } from "./canonical.ts";

/**
 * Content-addressed response cache shared by all runs on a machine. The key covers what
 * determines an answer — provider, base URL, model, sampling params, messages, seed and
 * sample index — and never a secret: API keys and headers are not part of it.
 */

export interface CacheKeyParts {
  provider: string;
  baseUrl?: string;
  model: string;
  /** Provider options (an adapter, a token field...) change answers too. */
  options?: Record<string, unknown>;
  /** For models on disk: a fingerprint of the weight files, so retrained weights miss the cache. */
  weights?: string;
  params: SamplingParams;
  messages: ChatMessage[];
  seed: number;
  /** A request's explicit per-sample seeds, when it has them (interp's sweeps). */
  sampleSeeds?: number[];
  /**
   * What else makes the answering model differ from the one named (interp: the hooks of a
   * steering or ablation condition, the in-memory training of re-alignment or the loop).
   */
  variant?: unknown;
}

/** What identifies the model that answers (everything in a key but the request's own fields). */
export type ModelIdentity = Omit<CacheKeyParts, "params" | "messages" | "seed" | "sampleSeeds" | "variant">;

/** The key of a request without its sample index; per-sample keys extend it. */
export function requestCacheKey(parts: CacheKeyParts): string {
  return sha256(
    canonicalJson({
      v: 1,
      provider: parts.provider,
      base_url: parts.baseUrl ?? null,
      model: parts.model,
      options: parts.options ?? null,
      weights: parts.weights ?? null,
      params: parts.params,
      messages: parts.messages,
      seed: parts.seed,
      // Absent (and so left out of the key) for ordinary requests: their keys are unchanged.
      sample_seeds: parts.sampleSeeds,
      variant: parts.variant,
    }),
  );
}

export function sampleCacheKey(requestKey: string, sampleIndex: number): string {
  return sha256(`${requestKey}:${sampleIndex}`);
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.EMLAB_CACHE_DIR) return path.resolve(env.EMLAB_CACHE_DIR);
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(base, "emlab");
}

export const CACHE_FILE = "responses.sqlite";

export class ResponseCache {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement;
  private readonly putStmt: Database.Statement;

  constructor(readonly dir: string = defaultCacheDir()) {
    mkdirSync(dir, { recursive: true });
    this.db = new Database(path.join(dir, CACHE_FILE));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(
      "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at TEXT NOT NULL)",
    );
    this.getStmt = this.db.prepare("SELECT value FROM entries WHERE key = ?");
    this.putStmt = this.db.prepare(
      "INSERT OR REPLACE INTO entries (key, value, created_at) VALUES (?, ?, ?)",
    );
  }

  get(key: string): Completion | undefined {
    const row = this.getStmt.get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as Completion) : undefined;
  }

  putMany(entries: Array<[key: string, completion: Completion]>): void {
    const t = new Date().toISOString();
    this.db.transaction(() => {
      for (const [key, c] of entries) this.putStmt.run(key, JSON.stringify(c), t);
    })();
  }

  size(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM entries").get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Removes the cache files; returns how many entries there were. */
  static clear(dir: string = defaultCacheDir()): number {
    let n = 0;
    try {
      const c = new ResponseCache(dir);
      n = c.size();
      c.close();
    } catch {
      // An unreadable cache is cleared all the same.
    }
    for (const suffix of ["", "-wal", "-shm"]) rmSync(path.join(dir, CACHE_FILE + suffix), { force: true });
    return n;
  }
}
