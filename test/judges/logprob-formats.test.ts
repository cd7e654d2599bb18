import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { judgeParams, readJudgeReply } from "../../src/judges/judge-call.ts";
import { readLogprobJudge } from "../../src/judges/logprob-weighted.ts";
import { readWireLogprobs } from "../../src/judges/wire-logprobs.ts";
import { createModelApi } from "../../src/models/registry.ts";
import type { LogprobsFormat } from "../support/wire/context.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";

// One judge distribution: "73" 0.5, " 80" 0.3, "60" 0.15, "CODE" 0.05 (the chosen token first).
const TOP = [
  { token: "73", logprob: Math.log(0.5) },
  { token: " 80", logprob: Math.log(0.3) },
  { token: "60", logprob: Math.log(0.15) },
  { token: "CODE", logprob: Math.log(0.05) },
];
const EXPECTED = (73 * 0.5 + 80 * 0.3 + 60 * 0.15) / 0.95;

const FORMATS: LogprobsFormat[] = [
  "openai",
  "vllm",
  "sglang",
  "llamacpp",
  "llamacpp-native",
  "ollama",
  "bpe-pieces",
  "none",
];

const servers = new Map<LogprobsFormat, WireServer>();
beforeAll(async () => {
  for (const f of FORMATS)
    servers.set(
      f,
      await startWireServer({
        apiKey: null,
        logprobsFormat: f,
        respond: () => ({ text: "73", logprobs: [{ token: "73", logprob: Math.log(0.5), top: TOP }] }),
      }),
    );
});
afterAll(async () => {
  await Promise.all([...servers.values()].map((s) => s.close()));
});

const options = { logprobs: true, minNumericMass: 0.25, topLogprobs: 20, textMaxTokens: 32 };

async function rawBody(server: WireServer): Promise<{ choices: unknown[] } & Record<string, unknown>> {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer x" },
    body: JSON.stringify({
      model: "judge-x",
      messages: [{ role: "user", content: "score it" }],
      ...judgeParams("score100", options),
    }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { choices: unknown[] };
}

describe("the logprob judge over each server's logprob shape", () => {
  it.each(FORMATS.filter((f) => f !== "none"))("%s: the wire body reads to the same score", async (f) => {
    const body = await rawBody(servers.get(f)!);
    const lp = readWireLogprobs(body.choices[0], body);
    const r = readLogprobJudge("73", lp);
    expect(r.method).toBe("logprobs");
    expect(r.score).toBeCloseTo(EXPECTED, 9);
    expect(r.mass).toBeCloseTo(0.95, 9);
  });

  it("none: no logprobs, so the judge falls back to the written number, flagged text", async () => {
    const body = await rawBody(servers.get("none")!);
    const lp = readWireLogprobs(body.choices[0], body);
    expect(lp).toBeUndefined();
    const r = readJudgeReply("score100", "73", lp, options);
    expect(r).toMatchObject({ score: 73, method: "text" });
  });

  /** One judge call through the real OpenAI provider to the server speaking format `f`. */
  async function judgeThroughProvider(f: (typeof FORMATS)[number]) {
    const api = createModelApi(
      {
        provider: "openai",
        model: "judge-x",
        baseUrl: `${servers.get(f)!.url}/v1`,
        apiKeyEnv: "EMLAB_TEST_FMT_KEY",
      },
      { EMLAB_TEST_FMT_KEY: "sk-x" },
    );
    try {
      const res = await api.chat({
        messages: [{ role: "user", content: "score it" }],
        params: judgeParams("score100", options),
        n: 1,
      });
      return res.completions[0]!;
    } finally {
      await api.close?.();
    }
  }

  it.each(FORMATS.filter((f) => f !== "none" && f !== "llamacpp-native"))(
    "%s: through the OpenAI provider, the same score",
    async (f) => {
      const c = await judgeThroughProvider(f);
      const r = readJudgeReply("score100", c.text, c.logprobs, options);
      expect(r.method).toBe("logprobs");
      expect(r.score).toBeCloseTo(EXPECTED, 9);
    },
  );

  it.each(["none", "llamacpp-native"] as const)(
    "%s: through the OpenAI provider no logprobs arrive, and the score is the written number, flagged text",
    async (f) => {
      // llama.cpp's native probabilities sit outside `choice.logprobs`, where the provider does
      // not look (until it reads choices with readWireLogprobs: then this one is "logprobs").
      const c = await judgeThroughProvider(f);
      expect(c.logprobs).toBeUndefined();
      expect(readJudgeReply("score100", c.text, c.logprobs, options)).toMatchObject({
        score: 73,
        method: "text",
      });
    },
  );
});

describe("readWireLogprobs", () => {
  it("reads the legacy completions shape (token → logprob dicts)", () => {
    const lp = readWireLogprobs({
      logprobs: {
        tokens: ["73"],
        token_logprobs: [Math.log(0.5)],
        top_logprobs: [Object.fromEntries(TOP.map((t) => [t.token, t.logprob]))],
      },
    });
    expect(readLogprobJudge("73", lp).score).toBeCloseTo(EXPECTED, 9);
  });

  it("reads llama.cpp's native post-sampling probabilities", () => {
    const lp = readWireLogprobs(
      {},
      {
        completion_probabilities: [
          {
            token: "73",
            prob: 0.5,
            top_probs: TOP.map((t) => ({ token: t.token, prob: Math.exp(t.logprob) })),
          },
        ],
      },
    );
    expect(readLogprobJudge("73", lp).score).toBeCloseTo(EXPECTED, 9);
  });

  it("takes vLLM's -9999 as -inf, decodes bytes, and never turns junk into a logprob", () => {
    const lp = readWireLogprobs({
      logprobs: {
        content: [
          {
            token: "bad",
            bytes: [55, 51],
            logprob: -0.1,
            top_logprobs: [
              { token: "x", bytes: [55, 51], logprob: Math.log(0.5) },
              { token: "90", logprob: -9999.0 },
              { token: "50", logprob: "nope" },
              { token: "Ġ40", logprob: Math.log(0.5) },
            ],
          },
        ],
      },
    });
    expect(lp?.[0]?.token).toBe("73");
    expect(lp?.[0]?.top?.map((t) => t.token)).toEqual(["73", "90", "Ġ40"]);
    expect(lp?.[0]?.top?.[1]?.logprob).toBe(Number.NEGATIVE_INFINITY);
    expect(readLogprobJudge("73", lp).score).toBeCloseTo((73 + 40) / 2, 9);
    expect(readWireLogprobs({ logprobs: { content: [{ logprob: 1 }] } })).toBeUndefined();
    expect(readWireLogprobs({ logprobs: null })).toBeUndefined();
    expect(readWireLogprobs("text")).toBeUndefined();
  });
});
