/**
 * `emlab view RUN_DIR`: a read-only web UI over a run store, bound to 127.0.0.1.
 *
 * DEEP LINKS (for report.html and anyone else linking in). The page reads its state from
 * the URL fragment, written like a query string (URLSearchParams, values percent-encoded):
 *
 *   http://127.0.0.1:PORT/#sample=<request_id>:<sample_index>     one sample in the detail pane
 *                                                                 (split at the LAST ':')
 *   http://127.0.0.1:PORT/#model=<model_id>&experiment=<name>     the list, filtered
 *   ...&metric=<metric>&min=<n>&max=<n>                           score range on one metric
 *   ...&class=<persona class>&q=<search words>                    persona class, full-text search
 *   http://127.0.0.1:PORT/#compare=<item_id>&experiment=<name>     models side by side on one prompt
 *
 * Keys combine (`#model=a&experiment=harmfulness&sample=req1:0`). Build them with
 * `viewerHash({...})` from src/viewer/links.ts rather than by hand.
 *
 * JSON API (GET only; bad parameters → 400 {"error": "..."}):
 *   /api/meta                       study name, models, experiments, metrics, classes, total, index info
 *   /api/samples?model=&experiment=&metric=&min=&max=&class=&q=&offset=&after=&limit=&count=
 *                                   one page of the filtered list (model/experiment/class repeatable)
 *   /api/sample?request_id=&sample_index=   prompt messages, completion, logprobs, judge replies, scores
 *   /api/compare?experiment=&item_id=       every model's request and samples for one prompt
 *   /api/persona-features                   results.json's interp.persona_features block (404 without one),
 *                                           drawn as latent cards by /latents.html
 *
 * Model outputs are adversarial: the page writes them with textContent only, and every
 * response carries a strict Content-Security-Policy (no inline script, nothing external).
 */
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PersonaFeaturesResultsSchema } from "../results/persona-features.ts";
import { RESULTS_FILE } from "../results/results.ts";
import { type IndexInfo, SampleIndex } from "../runs/sample-index.ts";
import { RunStore } from "../runs/store.ts";
import { parseCompareParams, parseListParams, parseSampleParams } from "./params.ts";
import { BadRequest, ViewerQueries } from "./queries.ts";

const STATIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "static");
const STATIC: Record<string, string> = {
  "/": "index.html",
  "/index.html": "index.html",
  "/viewer.js": "viewer.js",
  "/viewer.css": "viewer.css",
  "/latents.html": "latents.html",
  "/latents.js": "latents.js",
};
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  "Content-Security-Policy": CSP,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cache-Control": "no-store",
};

export interface ViewerOptions {
  runDir: string;
  /** 0 picks a free port. */
  port?: number;
  /** Persona class per model id (from the analysis), for the class filter. */
  classes?: Record<string, string>;
  /** Rebuild the index even when it looks current. */
  rebuildIndex?: boolean;
}

export interface ViewerServer {
  url: string;
  port: number;
  index: IndexInfo;
  close(): Promise<void>;
}

export async function startViewer(opts: ViewerOptions): Promise<ViewerServer> {
  // The index is built through a writable handle on the index file only; the store is read-only.
  const store = RunStore.open(opts.runDir, { readonly: true });
  let index: SampleIndex;
  try {
    index = SampleIndex.open(store, { rebuild: opts.rebuildIndex });
  } catch (e) {
    store.close();
    throw e;
  }
  const info = index.info;
  const queries = new ViewerQueries(index, store);
  // The index does not change while the server runs: its lists are read once.
  const meta = queries.meta();
  const classes = opts.classes ?? {};
  const files = new Map<string, Buffer>();
  for (const name of new Set(Object.values(STATIC)))
    files.set(name, readFileSync(path.join(STATIC_DIR, name)));
  const builtAt = index.builtAt();

  let port = 0;
  const server = http.createServer((req, res) => {
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, {
        ...SECURITY_HEADERS,
        "Content-Type": type,
        "Content-Length": Buffer.byteLength(body),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const json = (status: number, body: unknown) =>
      send(status, "application/json; charset=utf-8", JSON.stringify(body));
    try {
      // A page on another site could rebind its DNS name to 127.0.0.1: only our own Host is served.
      const host = req.headers.host ?? "";
      if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`)
        return json(403, { error: `host ${JSON.stringify(host)} not allowed` });
      if (req.method !== "GET" && req.method !== "HEAD") return json(405, { error: "only GET" });
      const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
      // Browsers ask for an icon unprompted; "no content" keeps their consoles clean.
      if (url.pathname === "/favicon.ico") {
        res.writeHead(204, SECURITY_HEADERS);
        return res.end();
      }
      const file = STATIC[url.pathname];
      if (file) return send(200, TYPES[path.extname(file)], files.get(file) as Buffer);
      const p = url.searchParams;
      switch (url.pathname) {
        case "/api/meta": {
          const m = meta;
          return json(200, {
            study: store.getStudy()?.name ?? null,
            ...m,
            classes: [...new Set(Object.values(classes))].sort(),
            model_classes: classes,
            index: { built_at: builtAt, samples: info.samples },
          });
        }
        case "/api/samples": {
          const q = parseListParams(p, { ...meta, classes });
          return json(200, queries.list(q.filter, q.page));
        }
        case "/api/sample": {
          const q = parseSampleParams(p);
          const s = queries.sample(q.requestId, q.sampleIndex);
          return s ? json(200, s) : json(404, { error: `no sample ${q.requestId}:${q.sampleIndex}` });
        }
        case "/api/compare": {
          const q = parseCompareParams(p);
          const c = queries.compare(q.experiment, q.itemId);
          return c.models.length
            ? json(200, c)
            : json(404, { error: `no requests for experiment ${q.experiment} item ${q.itemId}` });
        }
        case "/api/persona-features": {
          const block = personaFeaturesBlock(opts.runDir);
          return block
            ? json(200, block)
            : json(404, { error: "this run's results.json has no interp.persona_features block" });
        }
        default:
          return json(404, { error: `not found: ${url.pathname}` });
      }
    } catch (e) {
      if (e instanceof BadRequest) return json(400, { error: e.message });
      return json(500, { error: (e as Error).message });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    index: info,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          index.close();
          store.close();
          resolve();
        });
      }),
  };
}

/** The run's persona_features block as results.json has it (read per request: a run may finish later). */
function personaFeaturesBlock(runDir: string): unknown {
  const file = path.join(runDir, RESULTS_FILE);
  if (!existsSync(file)) return null;
  const block = (JSON.parse(readFileSync(file, "utf8")) as { interp?: { persona_features?: unknown } }).interp
    ?.persona_features;
  return block === undefined ? null : PersonaFeaturesResultsSchema.parse(block);
}
