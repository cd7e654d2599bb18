/**
 * `emlab serve`'s HTTP server: local models over the OpenAI wire. It binds 127.0.0.1 unless
 * told otherwise, checks an optional API key (Bearer), limits the body size, parses JSON,
 * dispatches to the routes, writes one log line per request (method, path, status, model,
 * tokens, latency: never a header, so never a key) and shuts down gracefully: close() stops
 * taking requests, lets those in flight finish and be written, then closes the sockets.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ChatBatcher } from "./chat-batcher.ts";
import { EngineQueue } from "./engine-queue.ts";
import { ApiError, badRequest, invalidApiKey } from "./errors.ts";
import {
  chatCompletions,
  completions,
  getModel,
  listModels,
  type RouteContext,
  type RouteResult,
} from "./routes.ts";
import { loadServedModel, type ServedModel, type ServeEdits, type ServeModelSpec } from "./served-model.ts";
import { writeSse } from "./sse.ts";

export interface ServeOptions {
  models: ServeModelSpec[];
  /** Steering / ablation applied to every served model. */
  edits?: ServeEdits;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8000; 0 = any free port. */
  port?: number;
  /** When set, every request must send `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Requests that may wait for the engine (default 256); more get 429. */
  maxQueued?: number;
  /** Merge waiting chat requests for the same prompt into one engine call (default true). */
  batching?: boolean;
  /** Where the request log goes (default stderr). */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8000 (the API is under /v1). */
  url: string;
  host: string;
  port: number;
  models: ServedModel[];
  /** Requests received and not yet answered. */
  inFlight(): number;
  /** Engine calls made for chat requests, and the requests they answered (merged ones share a call). */
  batching: { calls: number; requests: number };
  /** Stops taking requests, finishes those in flight, then closes every socket. */
  close(): Promise<void>;
}

export const DEFAULT_SERVE_PORT = 8000;
export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

const digest = (s: string) => createHash("sha256").update(s).digest();

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume(); // drain, so the client can finish sending and read the 400
      reject(new BodyTooLarge());
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (b: Buffer) => {
      if (over) return;
      size += b.length;
      if (size > limit) {
        over = true;
        parts.length = 0;
        reject(new BodyTooLarge());
        return;
      }
      parts.push(b);
    });
    req.on("end", () => {
      if (!over) resolve(Buffer.concat(parts));
    });
    req.on("error", reject);
  });
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  if (opts.models.length === 0) throw new Error("serve: no models");
  const models = new Map<string, ServedModel>();
  for (const spec of opts.models) {
    if (models.has(spec.name)) throw new Error(`serve: model name '${spec.name}' given twice`);
    models.set(spec.name, loadServedModel(spec, opts.edits));
  }
  const host = opts.host ?? "127.0.0.1";
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const queue = new EngineQueue(opts.maxQueued ?? 256);
  const batcher = new ChatBatcher(queue, { merge: opts.batching ?? true });
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const keyDigest = opts.apiKey ? digest(opts.apiKey) : null;
  let closing = false;
  let inFlight = 0;
  let drained: (() => void) | null = null;

  const authorized = (req: IncomingMessage): void => {
    if (keyDigest === null) return;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (!m) throw invalidApiKey(false);
    if (!timingSafeEqual(digest(m[1].trim()), keyDigest)) throw invalidApiKey(true);
  };

  const route = async (req: IncomingMessage, path: string, signal: AbortSignal): Promise<RouteResult> => {
    authorized(req);
    const ctx: RouteContext = { models, queue, batcher, signal };
    const method = req.method ?? "GET";
    if (method === "GET" && path === "/v1/models") return listModels(ctx);
    const one = /^\/v1\/models\/(.+)$/.exec(path);
    if (method === "GET" && one) return getModel(ctx, decodeURIComponent(one[1]));
    const post =
      path === "/v1/chat/completions" ? chatCompletions : path === "/v1/completions" ? completions : null;
    if (!post) throw new ApiError(404, `Invalid URL (${method} ${path})`);
    if (method !== "POST") throw new ApiError(405, `Method ${method} is not allowed on ${path}; use POST`);
    let raw: unknown;
    try {
      const buf = await readBody(req, limit);
      raw = JSON.parse(buf.toString("utf8"));
    } catch (e) {
      if (e instanceof BodyTooLarge)
        throw badRequest(
          `The request body is larger than this server's limit of ${limit} bytes.`,
          null,
          "body_too_large",
        );
      throw badRequest(
        "We could not parse the JSON body of your request: it is not valid JSON.",
        null,
        "invalid_json",
      );
    }
    return post(ctx, raw);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const t0 = performance.now();
    const path = (req.url ?? "/").split("?")[0];
    const ctl = new AbortController();
    // A client gone before its answer: its queued engine call is dropped.
    res.on("close", () => {
      if (!res.writableFinished) ctl.abort();
    });
    inFlight++;
    let result: RouteResult;
    try {
      if (closing) throw new ApiError(503, "The server is shutting down.", { code: "shutting_down" });
      result = await route(req, path, ctl.signal);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error).message}`);
      result = { status: err.status, body: err.body() };
    }
    const headers: Record<string, string> = closing ? { connection: "close" } : {};
    if (result.chunks) writeSse(res, result.chunks, headers);
    else if (!res.destroyed && !res.writableEnded) {
      const payload = JSON.stringify(result.body);
      // 499 is nginx's "client closed request": nobody reads it, the log records it.
      res.writeHead(result.status === 499 ? 400 : result.status, {
        ...headers,
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(payload)),
        ...(result.status >= 400 && req.readableEnded === false ? { connection: "close" } : {}),
      });
      res.end(payload);
    }
    const ms = performance.now() - t0;
    const fields = [
      req.method,
      path,
      String(result.status),
      ...(result.model ? [`model=${result.model}`] : []),
      ...(result.promptTokens !== undefined ? [`prompt_tokens=${result.promptTokens}`] : []),
      ...(result.completionTokens !== undefined ? [`completion_tokens=${result.completionTokens}`] : []),
      ...(result.status >= 400
        ? [`error=${(result.body as { error?: { code?: string | null } })?.error?.code ?? "error"}`]
        : []),
      ...(result.chunks ? ["stream"] : []),
      `latency_ms=${ms.toFixed(1)}`,
    ];
    log(fields.join(" "));
    inFlight--;
    if (inFlight === 0) drained?.();
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 0; // a queued request may wait for the engine as long as it takes
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? DEFAULT_SERVE_PORT, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  let closed: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${addr.port}`,
    host: addr.address,
    port: addr.port,
    models: [...models.values()],
    inFlight: () => inFlight,
    batching: batcher.stats,
    close() {
      closed ??= (async () => {
        closing = true;
        // No new connections; idle keep-alive ones close now, busy ones after their answer.
        const stopped = new Promise<void>((r) => server.close(() => r()));
        if (inFlight > 0) await new Promise<void>((r) => (drained = r));
        await queue.idle();
        server.closeAllConnections();
        await stopped;
        for (const m of models.values()) await m.api.close();
      })();
      return closed;
    },
  };
}
