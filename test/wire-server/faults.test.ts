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
