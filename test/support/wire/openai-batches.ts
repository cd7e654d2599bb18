// OpenAI Files + Batch API: multipart upload, file objects and content, and batches
// that move validating → in_progress → completed as they are polled, writing output and
// error JSONL files in OpenAI's line format.

import {
  HttpError,
  type Incoming,
  isObject,
  type Reply,
  type ServerState,
  type StoredFile,
} from "./context.ts";
import { chatCompletion, openaiError, parseChatRequest } from "./openai-chat.ts";
import { hexOf } from "./random.ts";
import { lineCount } from "./training-data.ts";

const PURPOSES = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"];
const ENDPOINTS = ["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions"];

const invalid = (message: string, param: string | null = null, code: string | null = null) =>
  openaiError(400, message, "invalid_request_error", param, code);

interface LineError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

interface BatchRecord {
  id: string;
  endpoint: string;
  inputFileId: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  createdAt: number;
  status: "validating" | "failed" | "in_progress" | "finalizing" | "completed" | "cancelling" | "cancelled";
  polls: number;
  lines: Array<{ custom_id: string; body: unknown }>;
  errors: LineError[];
  total: number;
  completed: number;
  failed: number;
  inProgressAt: number | null;
  completedAt: number | null;
  failedAt: number | null;
  cancellingAt: number | null;
  cancelledAt: number | null;
  outputFileId: string | null;
  errorFileId: string | null;
}

/**
 * A file object as both APIs that share /v1/files read it: OpenAI's fields (status,
 * status_details, expires_at) and Together's (Processed, FileType, LineCount), whichever API
 * uploaded the file, so a listing parses in either SDK.
 */
export function fileObject(f: StoredFile) {
  return {
    id: f.id,
    object: "file",
    bytes: f.bytes.length,
    created_at: f.createdAt,
    expires_at: null,
    filename: f.filename,
    purpose: f.purpose,
    status: "processed",
    status_details: null,
    Processed: true,
    FileType: f.filename.endsWith(".csv") ? "csv" : f.filename.endsWith(".parquet") ? "parquet" : "jsonl",
    LineCount: lineCount(f.bytes.toString("utf8")),
  };
}

/** Parse and check a batch input file: one `{custom_id, method, url, body}` object a line. */
function validateLines(text: string, endpoint: string): { lines: BatchRecord["lines"]; errors: LineError[] } {
  const lines: BatchRecord["lines"] = [];
  const errors: LineError[] = [];
  const seen = new Set<string>();
  text.split("\n").forEach((rawLine, i) => {
    const line = i + 1;
    if (rawLine.trim() === "") return;
    let obj: unknown;
    try {
      obj = JSON.parse(rawLine);
    } catch {
      errors.push({
        code: "invalid_json_line",
        message: "This line is not parseable as valid JSON.",
        param: null,
        line,
      });
      return;
    }
    if (!isObject(obj)) {
      errors.push({
        code: "invalid_json_line",
        message: "Each line must be a JSON object.",
        param: null,
        line,
      });
      return;
    }
    for (const field of ["custom_id", "method", "url", "body"]) {
      if (obj[field] === undefined) {
        errors.push({
          code: "missing_required_parameter",
          message: `Missing required parameter: '${field}'.`,
          param: field,
          line,
        });
        return;
      }
    }
    if (typeof obj.custom_id !== "string") {
      errors.push({
        code: "invalid_type",
        message: "Invalid type for 'custom_id': expected a string.",
        param: "custom_id",
        line,
      });
      return;
    }
    if (seen.has(obj.custom_id)) {
      errors.push({
        code: "duplicate_custom_id",
        message:
          "The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.",
        param: "custom_id",
        line,
      });
      return;
    }
    seen.add(obj.custom_id);
    if (obj.method !== "POST") {
      errors.push({
        code: "invalid_method",
        message: "Only POST is supported for batch requests.",
        param: "method",
        line,
      });
      return;
    }
    if (obj.url !== endpoint) {
      errors.push({
        code: "mismatched_endpoint",
        message: `The provided URL '${String(obj.url)}' does not match the batch endpoint '${endpoint}'.`,
        param: "url",
        line,
      });
      return;
    }
    lines.push({ custom_id: obj.custom_id, body: obj.body });
  });
  if (lines.length === 0 && errors.length === 0) {
    errors.push({ code: "empty_file", message: "The batch input file is empty.", param: null, line: null });
  }
  return { lines, errors };
}

export class OpenAIBatches {
  private batches = new Map<string, BatchRecord>();

  constructor(private state: ServerState) {}

  private file(id: string): StoredFile {
    const f = this.state.files.get(id);
    if (!f) throw openaiError(404, `No such File object: ${id}`, "invalid_request_error", "id");
    return f;
  }

  private storeFile(filename: string, purpose: string, bytes: Buffer): StoredFile {
    const f = { id: this.state.newId("file-", 22), filename, purpose, bytes, createdAt: this.state.now() };
    this.state.files.set(f.id, f);
    return f;
  }

  async uploadFile(inc: Incoming): Promise<Reply> {
    if (!inc.form)
      throw invalid("The files endpoint expects a multipart/form-data body with 'file' and 'purpose'.");
    const file = inc.form.get("file");
    const purpose = inc.form.get("purpose");
    if (!(file instanceof Blob)) {
      throw invalid("Missing required parameter: 'file'.", "file", "missing_required_parameter");
    }
    if (typeof purpose !== "string") {
      throw invalid("Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter");
    }
    if (!PURPOSES.includes(purpose)) {
      throw invalid(
        `'${purpose}' is not one of ${JSON.stringify(PURPOSES).replace(/"/g, "'")} - 'purpose'`,
        "purpose",
        "invalid_value",
      );
    }
    const bytes = Buffer.from(await file.arrayBuffer());
    const f = this.storeFile((file as File).name || "upload", purpose, bytes);
    return { status: 200, body: fileObject(f) };
  }

  /** GET /v1/files (either API); `?purpose=` filters, as OpenAI's does. */
  listFiles(inc: Incoming): Reply {
    const purpose = inc.query.get("purpose");
    const files = [...this.state.files.values()].filter((f) => purpose === null || f.purpose === purpose);
    return { status: 200, body: { object: "list", data: files.map(fileObject), has_more: false } };
  }

  getFile(inc: Incoming): Reply {
    return { status: 200, body: fileObject(this.file(inc.params.id)) };
  }

  deleteFile(inc: Incoming): Reply {
    const f = this.file(inc.params.id);
    this.state.files.delete(f.id);
    return { status: 200, body: { id: f.id, object: "file", deleted: true } };
  }

  fileContent(inc: Incoming): Reply {
    const f = this.file(inc.params.id);
    return { status: 200, body: f.bytes, contentType: "application/octet-stream" };
  }

  create(inc: Incoming): Reply {
    const body = inc.json;
    if (!isObject(body)) throw invalid("We could not parse the JSON body of your request.");
    for (const field of ["input_file_id", "endpoint", "completion_window"]) {
      if (body[field] === undefined) {
        throw invalid(`Missing required parameter: '${field}'.`, field, "missing_required_parameter");
      }
    }
    if (typeof body.endpoint !== "string" || !ENDPOINTS.includes(body.endpoint)) {
      throw invalid(
        `Invalid value: '${String(body.endpoint)}'. Supported values are: ${ENDPOINTS.map((e) => `'${e}'`).join(", ")}.`,
        "endpoint",
        "invalid_value",
      );
    }
    if (body.endpoint !== "/v1/chat/completions") {
      throw invalid(
        `wire-server: only /v1/chat/completions batches are implemented, not ${body.endpoint}.`,
        "endpoint",
      );
    }
    if (body.completion_window !== "24h") {
      throw invalid(
        `Invalid value: '${String(body.completion_window)}'. Supported values are: '24h'.`,
        "completion_window",
        "invalid_value",
      );
    }
    if (typeof body.input_file_id !== "string") {
      throw invalid("Invalid type for 'input_file_id': expected a string.", "input_file_id", "invalid_type");
    }
    const input = this.file(body.input_file_id);
    if (input.purpose !== "batch") {
      throw invalid(
        `The input file ${input.id} has purpose '${input.purpose}'; batch input files must have purpose 'batch'.`,
        "input_file_id",
        "invalid_value",
      );
    }
    const { lines, errors } = validateLines(input.bytes.toString("utf8"), body.endpoint);
    const rec: BatchRecord = {
      id: this.state.newId("batch_", 32),
      endpoint: body.endpoint,
      inputFileId: input.id,
      completionWindow: body.completion_window,
      metadata: isObject(body.metadata) ? (body.metadata as Record<string, string>) : null,
      createdAt: this.state.now(),
      status: "validating",
      polls: 0,
      lines,
      errors,
      total: 0,
      completed: 0,
      failed: 0,
      inProgressAt: null,
      completedAt: null,
      failedAt: null,
      cancellingAt: null,
      cancelledAt: null,
      outputFileId: null,
      errorFileId: null,
    };
    this.batches.set(rec.id, rec);
    return { status: 200, body: this.view(rec) };
  }

  private record(id: string): BatchRecord {
    const rec = this.batches.get(id);
    if (!rec) throw openaiError(404, `No batch found with id '${id}'.`, "invalid_request_error", "batch_id");
    return rec;
  }

  /** One poll: advance the batch's state machine, then show it. */
  retrieve(inc: Incoming): Reply {
    const rec = this.record(inc.params.id);
    rec.polls++;
    const now = this.state.now();
    if (rec.status === "cancelling") {
      rec.status = "cancelled";
      rec.cancelledAt = now;
    } else if (rec.status === "validating" || rec.status === "in_progress") {
      if (rec.errors.length > 0) {
        rec.status = "failed";
        rec.failedAt = now;
      } else {
        rec.status = "in_progress";
        rec.inProgressAt ??= now;
        rec.total = rec.lines.length;
        if (rec.polls >= this.state.opts.batchPolls) this.process(rec);
      }
    }
    return { status: 200, body: this.view(rec) };
  }

  private process(rec: BatchRecord): void {
    const ok: string[] = [];
    const bad: string[] = [];
    for (const line of rec.lines) {
      const id = `batch_req_${hexOf(`${rec.id}:${line.custom_id}`, 32)}`;
      const requestId = `req_${hexOf(`${rec.id}:req:${line.custom_id}`, 32)}`;
      let status: number;
      let body: unknown;
      try {
        body = chatCompletion(this.state, parseChatRequest(this.state, line.body), true);
        status = 200;
      } catch (err) {
        if (err instanceof HttpError) {
          status = err.status;
          body = err.body;
        } else {
          status = 500;
          body = { error: { message: String(err), type: "server_error", param: null, code: null } };
        }
      }
      const out = JSON.stringify({
        id,
        custom_id: line.custom_id,
        response: { status_code: status, request_id: requestId, body },
        error: null,
      });
      (status === 200 ? ok : bad).push(out);
    }
    rec.completed = ok.length;
    rec.failed = bad.length;
    if (ok.length > 0) {
      rec.outputFileId = this.storeFile(
        `${rec.id}_output.jsonl`,
        "batch_output",
        Buffer.from(`${ok.join("\n")}\n`),
      ).id;
    }
    if (bad.length > 0) {
      rec.errorFileId = this.storeFile(
        `${rec.id}_error.jsonl`,
        "batch_output",
        Buffer.from(`${bad.join("\n")}\n`),
      ).id;
    }
    rec.status = "completed";
    rec.completedAt = this.state.now();
  }

  cancel(inc: Incoming): Reply {
    const rec = this.record(inc.params.id);
    if (rec.status !== "validating" && rec.status !== "in_progress") {
      throw openaiError(409, `Cannot cancel a batch with status '${rec.status}'.`, "invalid_request_error");
    }
    rec.status = "cancelling";
    rec.cancellingAt = this.state.now();
    return { status: 200, body: this.view(rec) };
  }

  list(): Reply {
    const data = [...this.batches.values()].reverse().map((b) => this.view(b)); // newest first
    return {
      status: 200,
      body: {
        object: "list",
        data,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: false,
      },
    };
  }

  private view(rec: BatchRecord) {
    const inProgress = rec.status === "in_progress";
    // While in progress, report a share of lines done that grows with each poll.
    const done = inProgress
      ? Math.floor((rec.total * (rec.polls - 1)) / this.state.opts.batchPolls)
      : rec.completed;
    return {
      id: rec.id,
      object: "batch",
      endpoint: rec.endpoint,
      errors: rec.errors.length > 0 ? { object: "list", data: rec.errors } : null,
      input_file_id: rec.inputFileId,
      completion_window: rec.completionWindow,
      status: rec.status,
      output_file_id: rec.outputFileId,
      error_file_id: rec.errorFileId,
      created_at: rec.createdAt,
      in_progress_at: rec.inProgressAt,
      expires_at: rec.createdAt + 24 * 3600,
      finalizing_at: rec.completedAt,
      completed_at: rec.completedAt,
      failed_at: rec.failedAt,
      expired_at: null,
      cancelling_at: rec.cancellingAt,
      cancelled_at: rec.cancelledAt,
      request_counts: { total: rec.total, completed: done, failed: inProgress ? 0 : rec.failed },
      metadata: rec.metadata,
    };
  }
}
