// Anthropic Message Batches: create, poll (in_progress → ended), JSONL results in
// Anthropic's line format, cancel. Params are validated when the batch is processed,
// as the real API does, so bad params come back as "errored" results.

import { anthropicError, anthropicMessage, parseMessagesRequest } from "./anthropic-messages.ts";
import { HttpError, type Incoming, isObject, type Reply, type ServerState } from "./context.ts";

const invalid = (message: string) => anthropicError(400, "invalid_request_error", message);

interface MessageBatch {
  id: string;
  requests: Array<{ custom_id: string; params: unknown }>;
  createdAt: Date;
  status: "in_progress" | "canceling" | "ended";
  polls: number;
  cancelInitiatedAt: Date | null;
  endedAt: Date | null;
  results: string[];
  counts: { processing: number; succeeded: number; errored: number; canceled: number; expired: number };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export class AnthropicBatches {
  private batches = new Map<string, MessageBatch>();

  constructor(private state: ServerState) {}

  create(inc: Incoming): Reply {
    const body = inc.json;
    if (!isObject(body)) throw invalid("There was an error parsing the body: expected a JSON object");
    for (const key of Object.keys(body)) {
      if (key !== "requests") throw invalid(`${key}: Extra inputs are not permitted`);
    }
    if (body.requests === undefined) throw invalid("requests: Field required");
    if (!Array.isArray(body.requests)) throw invalid("requests: Input should be a valid list");
    if (body.requests.length === 0)
      throw invalid("requests: List should have at least 1 item after validation, not 0");
    if (body.requests.length > 100_000) throw invalid("requests: List should have at most 100000 items");
    const seen = new Set<string>();
    const requests = body.requests.map((r, i) => {
      if (!isObject(r)) throw invalid(`requests.${i}: Input should be a valid dictionary`);
      if (r.custom_id === undefined) throw invalid(`requests.${i}.custom_id: Field required`);
      if (typeof r.custom_id !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(r.custom_id)) {
        throw invalid(`requests.${i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
      }
      if (seen.has(r.custom_id)) {
        throw invalid(`requests: custom_id values must be unique within a batch; '${r.custom_id}' repeats`);
      }
      seen.add(r.custom_id);
      if (!isObject(r.params)) throw invalid(`requests.${i}.params: Field required`);
      return { custom_id: r.custom_id, params: r.params as unknown };
    });
    const batch: MessageBatch = {
      id: this.state.newId("msgbatch_", 24),
      requests,
      createdAt: new Date(),
      status: "in_progress",
      polls: 0,
      cancelInitiatedAt: null,
      endedAt: null,
      results: [],
      counts: { processing: requests.length, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
    };
    this.batches.set(batch.id, batch);
    return { status: 200, body: this.view(batch) };
  }

  private batch(id: string): MessageBatch {
    const b = this.batches.get(id);
    if (!b) throw anthropicError(404, "not_found_error", `message_batch_id: no batch found with id '${id}'`);
    return b;
  }

  /** One poll: advance the batch, then show it. */
  retrieve(inc: Incoming): Reply {
    const b = this.batch(inc.params.id);
    b.polls++;
    if (b.status === "canceling") this.end(b, true);
    else if (b.status === "in_progress" && b.polls >= this.state.opts.batchPolls) this.end(b, false);
    return { status: 200, body: this.view(b) };
  }

  private end(b: MessageBatch, canceled: boolean): void {
    b.results = b.requests.map(({ custom_id, params }) => {
      if (canceled) {
        b.counts.canceled++;
        return JSON.stringify({ custom_id, result: { type: "canceled" } });
      }
      try {
        const message = anthropicMessage(this.state, parseMessagesRequest(this.state, params), true);
        b.counts.succeeded++;
        return JSON.stringify({ custom_id, result: { type: "succeeded", message } });
      } catch (err) {
        b.counts.errored++;
        const error =
          err instanceof HttpError
            ? err.body
            : { type: "error", error: { type: "api_error", message: String(err) } };
        return JSON.stringify({ custom_id, result: { type: "errored", error } });
      }
    });
    b.counts.processing = 0;
    b.status = "ended";
    b.endedAt = new Date();
  }

  results(inc: Incoming): Reply {
    const b = this.batch(inc.params.id);
    if (b.status !== "ended") {
      throw invalid(
        `Batch ${b.id} has not finished processing (processing_status: ${b.status}); results are not available yet.`,
      );
    }
    return { status: 200, body: `${b.results.join("\n")}\n`, contentType: "application/x-jsonl" };
  }

  cancel(inc: Incoming): Reply {
    const b = this.batch(inc.params.id);
    if (b.status === "in_progress") {
      b.status = "canceling";
      b.cancelInitiatedAt = new Date();
    }
    return { status: 200, body: this.view(b) };
  }

  list(): Reply {
    const data = [...this.batches.values()].reverse().map((b) => this.view(b)); // newest first
    return {
      status: 200,
      body: { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null },
    };
  }

  private view(b: MessageBatch) {
    return {
      id: b.id,
      type: "message_batch",
      processing_status: b.status,
      request_counts: { ...b.counts },
      ended_at: iso(b.endedAt),
      created_at: iso(b.createdAt),
      expires_at: iso(new Date(b.createdAt.getTime() + 24 * 3600 * 1000)),
      archived_at: null,
      cancel_initiated_at: iso(b.cancelInitiatedAt),
      results_url: b.status === "ended" ? `${this.state.baseUrl}/v1/messages/batches/${b.id}/results` : null,
    };
  }
}
