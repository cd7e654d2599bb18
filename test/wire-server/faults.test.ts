import { spawn } from "node:child_process";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { startWireServer, type WireServer } from "../support/wire-server.ts";

let server: WireServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function clients(s: WireServer) {
  return {
    openai: new OpenAI({ apiKey: s.apiKey, baseURL: `${s.url}/v1`, maxRetries: 0 }),
    anthropic: new Anthropic({ apiKey: s.apiKey, baseURL: s.url, maxRetries: 0 }),
  };
}

/** Classify what the SDK saw, in the server log's vocabulary. */
function outcomeOf(err: unknown): string {
  if (err === null) return "ok";
  if (err instanceof OpenAI.APIConnectionError || err instanceof Anthropic.APIConnectionError) return "drop";
  if (err instanceof OpenAI.RateLimitError || err instanceof Anthropic.RateLimitError) return "429";
  if (err instanceof OpenAI.InternalServerError || err instanceof Anthropic.InternalServerError) return "500";
  // A cut-off 200 body: both SDKs let response.json()'s SyntaxError through, unwrapped.
  if (err instanceof SyntaxError && /JSON/.test(err.message)) return "truncated";
  return `unexpected: ${String(err)}`;
}

async function one(c: ReturnType<typeof clients>, i: number): Promise<string> {
  try {
    if (i % 2 === 0) {
      await c.openai.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: `p${i}` }],
      });
    } else {
      await c.anthropic.messages.create({
        model: "claude-haiku-4-5",
        max_tokens: 20,
        messages: [{ role: "user", content: `p${i}` }],
      });
    }
    return outcomeOf(null);
  } catch (err) {
    return outcomeOf(err);
  }
}

/** Run `n` requests with `concurrency` workers; results indexed by request number. */
async function drive(s: WireServer, n: number, concurrency: number): Promise<string[]> {
  const c = clients(s);
  const out: string[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await one(c, i);
      }
    }),
  );
  return out;
}

const count = (xs: string[], x: string) => xs.filter((y) => y === x).length;

/** One raw generation request (no SDK), so the bytes on the wire can be looked at. */
async function raw(s: WireServer, api: "openai" | "anthropic", body: Record<string, unknown>) {
  const res =
    api === "openai"
      ? await fetch(`${s.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${s.apiKey}`, "content-type": "application/json" },
          body: JSON.stringify({
            model: "gpt-4o-mini",
            messages: [{ role: "user", content: "hi" }],
            ...body,
          }),
        })
      : await fetch(`${s.url}/v1/messages`, {
          method: "POST",
          headers: {
            "x-api-key": s.apiKey,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
          },
          body: JSON.stringify({
            model: "claude-haiku-4-5",
            max_tokens: 30,
            messages: [{ role: "user", content: "hi" }],
            ...body,
          }),
        });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { res, bytes, text: bytes.toString("utf8") };
}

describe("wire server fault injection and counting", () => {
  it("injects 429 / 500 / drop at roughly the configured rates over 500 requests and counts them", async () => {
    // A little latency so that requests overlap on the server and maxInFlight means something.
    server = await startWireServer({
      latencyMs: 5,
      faults: { rate429: 0.2, rate500: 0.05, rateDrop: 0.02, seed: 42 },
    });
    const seen = await drive(server, 500, 16);
    const n429 = count(seen, "429");
    const n500 = count(seen, "500");
    const drops = count(seen, "drop");
    const ok = count(seen, "ok");
    expect(n429 + n500 + drops + ok).toBe(500);
    // Binomial 3-sigma bands around 100, 25 and 10.
    expect(n429).toBeGreaterThanOrEqual(73);
    expect(n429).toBeLessThanOrEqual(127);
    expect(n500).toBeGreaterThanOrEqual(11);
    expect(n500).toBeLessThanOrEqual(40);
    expect(drops).toBeGreaterThanOrEqual(1);
    expect(drops).toBeLessThanOrEqual(20);

    const { stats, log } = server;
    expect(stats.requests).toBe(500);
    expect(stats.dropped).toBe(drops);
    expect(stats.byStatus).toEqual({ 200: ok, 429: n429, 500: n500 });
    expect(stats.byPath).toEqual({ "/v1/chat/completions": 250, "/v1/messages": 250 });
    expect(stats.inFlight).toBe(0);
    expect(stats.maxInFlight).toBeGreaterThan(1);
    expect(log).toHaveLength(500);
    for (const outcome of ["ok", "429", "500", "drop"])
      expect(
        count(
          log.map((e) => e.outcome),
          outcome,
        ),
      ).toBe(count(seen, outcome));
    const entry = log.find((e) => e.api === "anthropic" && e.outcome === "ok")!;
    expect(entry).toMatchObject({ path: "/v1/messages", model: "claude-haiku-4-5", status: 200 });
    expect(entry.body).toMatchObject({ max_tokens: 20 });
    expect(log.find((e) => e.outcome === "drop")!.status).toBeNull();

    server.reset();
    expect(server.stats).toMatchObject({ requests: 0, byStatus: {}, byPath: {}, dropped: 0 });
    expect(server.log).toHaveLength(0);
  });

  it("replays the same fault sequence after reset() (serial arrival order)", async () => {
    server = await startWireServer({ faults: { rate429: 0.3, rate500: 0.1, rateDrop: 0.05, seed: 7 } });
    const first = await drive(server, 120, 1);
    server.reset();
    const second = await drive(server, 120, 1);
    expect(second).toEqual(first);
    server.setFaults({ seed: 8 });
    expect(await drive(server, 120, 1)).not.toEqual(first);
  });

  it("setFaults at run time switches faults on and off", async () => {
    server = await startWireServer();
    expect(count(await drive(server, 40, 4), "ok")).toBe(40);
    server.setFaults({ rate429: 1 });
    expect(count(await drive(server, 10, 2), "429")).toBe(10);
    server.setFaults({ rate429: 0 });
    expect(count(await drive(server, 10, 2), "ok")).toBe(10);
    expect(() => server!.setFaults({ rate500: 1.5 })).toThrow(/rate500/);
    expect(() => server!.setFaults({ rate429: 0.6, rate500: 0.6 })).toThrow(/must not exceed 1/);
  });

  it("truncate: a 200 with JSON content-type whose body is the first half of the real answer", async () => {
    server = await startWireServer();
    for (const api of ["openai", "anthropic"] as const) {
      const whole = await raw(server, api, {});
      expect(whole.res.status).toBe(200);
      JSON.parse(whole.text); // the un-faulted answer is valid JSON
      server.queueFaults("truncate");
      const cut = await raw(server, api, {});
      expect(cut.res.status).toBe(200);
      expect(cut.res.headers.get("content-type")).toBe("application/json");
      // Framing is consistent (the HTTP exchange itself is fine): content-length = bytes sent.
      expect(Number(cut.res.headers.get("content-length"))).toBe(cut.bytes.length);
      expect(cut.res.headers.get(api === "openai" ? "x-request-id" : "request-id")).toMatch(/^req_/);
      // Same request, same generated text, same id/timestamp widths: exactly half the bytes.
      expect(cut.bytes.length).toBe(Math.floor(whole.bytes.length / 2));
      const mask = (t: string) => t.replace(/"(id|created)":("[^"]*"|\d+)/g, '"$1":_');
      expect(mask(whole.text).startsWith(mask(cut.text).replace(/"(id|created)":[^,]*$/, ""))).toBe(true);
      expect(() => JSON.parse(cut.text)).toThrow(SyntaxError);
    }
    expect(server.log.map((e) => [e.route, e.outcome, e.status])).toEqual([
      ["/v1/chat/completions", "ok", 200],
      ["/v1/chat/completions", "truncated", 200],
      ["/v1/messages", "ok", 200],
      ["/v1/messages", "truncated", 200],
    ]);
    expect(server.stats.byStatus).toEqual({ 200: 4 });
  });

  it("truncate: the SDKs see a SyntaxError; a request that would not get a 200 is answered whole", async () => {
    server = await startWireServer();
    server.queueFaults("truncate", "truncate", "truncate");
    expect(await drive(server, 2, 1)).toEqual(["truncated", "truncated"]);
    // A bad field gets its 400 intact (the fault is spent on it), and the next request is fine.
    const bad = await raw(server, "openai", { temperature: 5 });
    expect(bad.res.status).toBe(400);
    expect(JSON.parse(bad.text).error.param).toBe("temperature");
    expect(await drive(server, 2, 1)).toEqual(["ok", "ok"]);
    expect(server.log.map((e) => e.outcome)).toEqual(["truncated", "truncated", "error4xx", "ok", "ok"]);
  });

  it("rateTruncate: cut-off bodies at about the configured rate, replayed by seed", async () => {
    server = await startWireServer({ faults: { rateTruncate: 0.25, rateDrop: 0.05, seed: 3 } });
    const first = await drive(server, 200, 1);
    const n = count(first, "truncated");
    // Binomial 3-sigma band around 50.
    expect(n).toBeGreaterThanOrEqual(32);
    expect(n).toBeLessThanOrEqual(68);
    expect(count(first, "ok") + n + count(first, "drop")).toBe(200);
    expect(
      count(
        server.log.map((e) => e.outcome),
        "truncated",
      ),
    ).toBe(n);
    expect(server.stats.byStatus[200]).toBe(200 - count(first, "drop"));
    server.reset();
    expect(await drive(server, 200, 1)).toEqual(first);
    expect(() => server!.setFaults({ rateTruncate: 0.5, rate429: 0.6 })).toThrow(/must not exceed 1/);
    expect(() => server!.setFaults({ rateTruncate: 2 })).toThrow(/rateTruncate/);
  });

  it("slowRate delays answers by slowMs", async () => {
    server = await startWireServer({ faults: { slowRate: 1, slowMs: 150 } });
    const t0 = Date.now();
    expect(await drive(server, 2, 2)).toEqual(["ok", "ok"]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(server.log.every((e) => e.ms >= 140)).toBe(true);
  });

  it("concurrencyLimit answers 429 beyond that many requests in flight", async () => {
    server = await startWireServer({ concurrencyLimit: 2, latencyMs: 100 });
    const seen = await drive(server, 6, 6);
    expect(count(seen, "ok")).toBe(2);
    expect(count(seen, "429")).toBe(4);
  });

  it("close() ends open keep-alive and slow connections promptly", async () => {
    const s = await startWireServer({ faults: { slowRate: 1, slowMs: 10_000 } });
    const pending = one(clients(s), 0);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await s.close();
    expect(await pending).toBe("drop");
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("runs standalone: prints its URL and key, and serves requests", async () => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "test/support/wire-server.ts",
        "--port",
        "0",
        "--rate429",
        "1",
        "--api-key",
        "k-cli",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d) => {
          out += String(d);
          const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
          if (m && out.includes("API key")) resolve(m[1]);
        });
        child.on("exit", (code) => reject(new Error(`wire-server exited ${code}: ${out}`)));
      });
      expect(out).toContain("k-cli");
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer k-cli", "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "x" }] }),
      });
      expect(r.status).toBe(429);
      expect(r.headers.get("retry-after")).toBe("1");
    } finally {
      child.kill("SIGTERM");
    }
  });
});
