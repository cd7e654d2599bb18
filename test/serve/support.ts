// What the serve tests share: the shipped organism (small, with its chat template), a server
// on a free port whose log lines are kept, and raw HTTP for what an SDK would not send.
import { request } from "node:http";
import path from "node:path";
import { type RunningServer, type ServeOptions, startServer } from "../../src/serve/server.ts";

export const ORGANISM = path.resolve(import.meta.dirname, "../../models/organism");

export async function serve(
  o: Partial<ServeOptions> = {},
): Promise<{ server: RunningServer; logs: string[]; base: string }> {
  const logs: string[] = [];
  const server = await startServer({
    models: [{ name: "organism", dir: ORGANISM }],
    port: 0,
    log: (l) => logs.push(l),
    ...o,
  });
  return { server, logs, base: `${server.url}/v1` };
}

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with exactly this body (a string or bytes), no client-side checks. */
export function raw(
  url: string,
  opts: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? "POST",
        headers: { "content-type": "application/json", ...(opts.headers ?? {}) },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (b: Buffer) => parts.push(b));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}
