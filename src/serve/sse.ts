/**
 * Server-sent events as the OpenAI API streams them: `data: <json>\n\n` per chunk, then
 * `data: [DONE]\n\n`. Writes to a client that has gone are dropped (never awaited), so a
 * reader that disconnects or stops reading holds up no one else.
 */
import type { ServerResponse } from "node:http";

export function writeSse(
  res: ServerResponse,
  chunks: readonly object[],
  headers: Record<string, string>,
): void {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(200, {
    ...headers,
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
  });
  for (const c of chunks) {
    if (res.destroyed) return;
    res.write(`data: ${JSON.stringify(c)}\n\n`);
  }
  res.end("data: [DONE]\n\n");
}
