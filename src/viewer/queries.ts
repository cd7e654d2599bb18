import type Database from "better-sqlite3";
import type { RunStore } from "../runs/store.ts";

/**
 * Server-side queries of the viewer: the filtered, paged sample list (over the side index)
 * and the full records of one sample / one prompt across models (over the run store).
 */

export class BadRequest extends Error {}

export interface SampleFilter {
  models: string[];
  experiments: string[];
  /** Score range on one metric: samples without a score for it are left out. */
  metric?: string;
  min?: number;
  max?: number;
  /** Free text, matched against prompt + completion (all words, `word*` for a prefix). */
  q?: string;
}

export interface ListRow {
  id: number;
  request_id: string;
  sample_index: number;
  model_id: string;
  experiment: string;
  item_id: string;
  prompt: string;
  completion: string;
  scores: Record<string, number>;
}

/**
 * User words → an FTS5 query of quoted terms (all must match), so no input can be FTS
 * syntax: `"` is doubled inside terms, a trailing `*` stays a prefix search.
 */
export function ftsQuery(q: string): string | null {
  const terms = q
    .split(/\s+/)
    .filter(Boolean)
    .map((t) => {
      const prefix = t.endsWith("*") && t.length > 1;
      const word = (prefix ? t.slice(0, -1) : t).replaceAll('"', '""');
      return `"${word}"${prefix ? "*" : ""}`;
    });
  return terms.length ? terms.join(" ") : null;
}

function where(f: SampleFilter): { sql: string; args: unknown[]; join: string } {
  const clauses: string[] = [];
  const args: unknown[] = [];
  let join = "";
  if (f.metric !== undefined) {
    join = "JOIN scores sc ON sc.sample_id = s.id AND sc.metric = ?";
    args.push(f.metric);
    if (f.min !== undefined) {
      clauses.push("sc.score >= ?");
      args.push(f.min);
    }
    if (f.max !== undefined) {
      clauses.push("sc.score <= ?");
      args.push(f.max);
    }
  }
  if (f.models.length) {
    clauses.push(`s.model_id IN (${f.models.map(() => "?").join(",")})`);
    args.push(...f.models);
  }
  if (f.experiments.length) {
    clauses.push(`s.experiment IN (${f.experiments.map(() => "?").join(",")})`);
    args.push(...f.experiments);
  }
  const fts = f.q ? ftsQuery(f.q) : null;
  if (fts) {
    clauses.push("s.id IN (SELECT rowid FROM fts WHERE fts MATCH ?)");
    args.push(fts);
  }
  return { sql: clauses.length ? `WHERE ${clauses.join(" AND ")}` : "", args, join };
}

export class ViewerQueries {
  private readonly scoreStmt: Database.Statement;

  constructor(
    readonly index: Database.Database,
    readonly store: RunStore,
  ) {
    this.scoreStmt = index.prepare("SELECT metric, score FROM scores WHERE sample_id = ?");
  }

  meta(): { models: string[]; experiments: string[]; metrics: string[]; total: number } {
    const pluck = (sql: string) => this.index.prepare(sql).pluck().all() as string[];
    return {
      models: pluck("SELECT DISTINCT model_id FROM samples ORDER BY model_id"),
      experiments: pluck("SELECT DISTINCT experiment FROM samples ORDER BY experiment"),
      metrics: pluck("SELECT DISTINCT metric FROM scores ORDER BY metric"),
      total: this.index.prepare("SELECT count(*) FROM samples").pluck().get() as number,
    };
  }

  /**
   * One page of the filtered list in index order. `after` (the last id seen) pages by key,
   * `offset` jumps anywhere (what the virtualised list needs when the scrollbar is dragged).
   */
  list(
    f: SampleFilter,
    page: { offset: number; limit: number; after?: number; count: boolean },
  ): { total: number | null; offset: number; rows: ListRow[]; next_after: number | null } {
    const w = where(f);
    let sql = w.sql;
    const args = [...w.args];
    // Index ids run 1..N without gaps, so an unfiltered offset is a key: no rows to skip over.
    const after = page.after ?? (sql || w.join ? undefined : page.offset);
    if (after !== undefined) {
      sql = sql ? `${sql} AND s.id > ?` : "WHERE s.id > ?";
      args.push(after);
    }
    const rows = this.index
      .prepare(
        `SELECT s.id, s.request_id, s.sample_index, s.model_id, s.experiment, s.item_id, s.prompt, s.completion
         FROM samples s ${w.join} ${sql} ORDER BY s.id LIMIT ? OFFSET ?`,
      )
      .all(...args, page.limit, after !== undefined ? 0 : page.offset) as Array<Omit<ListRow, "scores">>;
    const total = page.count
      ? (this.index
          .prepare(`SELECT count(*) FROM samples s ${w.join} ${w.sql}`)
          .pluck()
          .get(...w.args) as number)
      : null;
    const withScores = rows.map((r) => {
      const scores: Record<string, number> = {};
      for (const s of this.scoreStmt.all(r.id) as Array<{ metric: string; score: number }>)
        scores[s.metric] = s.score;
      return { ...r, scores };
    });
    return {
      total,
      offset: page.after !== undefined ? -1 : page.offset,
      rows: withScores,
      next_after: rows.length === page.limit ? rows[rows.length - 1].id : null,
    };
  }

  /** Everything stored about one sample: prompt, completion, logprobs, judge replies. */
  sample(requestId: string, sampleIndex: number) {
    const request = this.store.getRequest(requestId);
    if (!request) return null;
    const completion = this.store.completions(requestId).find((c) => c.sample_index === sampleIndex);
    if (!completion) return null;
    const judgments = this.store.judgments({ requestId }).filter((j) => j.sample_index === sampleIndex);
    return {
      request: {
        id: request.id,
        model_id: request.model_id,
        experiment: request.experiment,
        item_id: request.item_id,
        status: request.status,
        n: request.n,
        seed: request.seed,
        messages: parseJson(request.messages_json),
        params: parseJson(request.params_json),
      },
      completion: {
        sample_index: completion.sample_index,
        text: completion.text,
        finish_reason: completion.finish_reason,
        logprobs: completion.logprobs_json === null ? null : parseJson(completion.logprobs_json),
        completion_tokens: completion.completion_tokens,
        latency_ms: completion.latency_ms,
        cached: completion.cached === 1,
      },
      judgments: judgments.map((j) => ({
        judge_model_id: j.judge_model_id,
        metric: j.metric,
        score: j.score,
        method: j.method,
        raw: j.raw,
        judge_request_id: j.judge_request_id,
      })),
      /** A judge request's item id names the answer it judged: `<request id>|<sample>|<metric>|<kind>`. */
      judged: judgedAnswer(request.experiment, request.item_id),
    };
  }

  /** The same prompt (experiment + item id) answered by every model, side by side. */
  compare(experiment: string, itemId: string) {
    const ids = this.index
      .prepare(
        "SELECT DISTINCT request_id FROM samples WHERE experiment = ? AND item_id = ? ORDER BY model_id, request_id",
      )
      .pluck()
      .all(experiment, itemId) as string[];
    const columns = ids.map((rid) => {
      const r = this.store.getRequest(rid);
      if (!r) throw new Error(`request ${rid} is in the viewer index but not in the run store`);
      const judgments = this.store.judgments({ requestId: rid });
      return {
        model_id: r.model_id,
        request_id: r.id,
        messages: parseJson(r.messages_json),
        samples: this.store.completions(rid).map((c) => ({
          sample_index: c.sample_index,
          text: c.text,
          finish_reason: c.finish_reason,
          judgments: judgments
            .filter((j) => j.sample_index === c.sample_index)
            .map((j) => ({
              judge_model_id: j.judge_model_id,
              metric: j.metric,
              score: j.score,
              method: j.method,
            })),
        })),
      };
    });
    return { experiment, item_id: itemId, models: columns };
  }
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

function judgedAnswer(experiment: string, itemId: string) {
  if (!experiment.endsWith(".judge")) return null;
  const parts = itemId.split("|");
  if (parts.length < 4) return null;
  const [kind, metric, sample] = [parts.pop(), parts.pop(), parts.pop()];
  const index = Number(sample);
  if (!Number.isInteger(index)) return null;
  return { request_id: parts.join("|"), sample_index: index, metric, kind };
}
