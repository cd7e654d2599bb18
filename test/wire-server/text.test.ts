import { describe, expect, it } from "vitest";
import { type CompletionRequest, complete, splitTokens } from "../support/wire/text.ts";

function request(
  over: Partial<CompletionRequest["ctx"]> = {},
  rest: Partial<CompletionRequest> = {},
): CompletionRequest {
  return {
    ctx: {
      api: "openai",
      model: "m",
      messages: [{ role: "user", content: "hello" }],
      seed: 7,
      index: 0,
      temperature: 1,
      maxTokens: null,
      batch: false,
      ...over,
    },
    stops: [],
    topLogprobs: 5,
    ...rest,
  };
}

describe("wire text generation", () => {
  it("splits text into word tokens that join back exactly", () => {
    for (const text of ["", "a", " lead and trail  ", "one\ntwo  three", "   "]) {
      expect(splitTokens(text).join("")).toBe(text);
    }
    expect(splitTokens("The old road.")).toEqual(["The", " old", " road."]);
  });

  it("is deterministic in (model, messages, seed, index) and varies with each", () => {
    const base = complete(request()).text;
    expect(complete(request()).text).toBe(base);
    expect(complete(request({ seed: 8 })).text).not.toBe(base);
    expect(complete(request({ index: 1 })).text).not.toBe(base);
    expect(complete(request({ model: "other" })).text).not.toBe(base);
    expect(complete(request({ messages: [{ role: "user", content: "bye" }] })).text).not.toBe(base);
  });

  it("ignores the choice index at temperature 0 and puts the chosen token first", () => {
    const a = complete(request({ temperature: 0, index: 0 }));
    const b = complete(request({ temperature: 0, index: 3 }));
    expect(b.text).toBe(a.text);
    for (const t of a.tokens) expect(t.top[0].token).toBe(t.token);
  });

  it("gives plausible logprobs: descending alternatives, chosen among them, total probability <= 1", () => {
    let chosenNotFirst = 0;
    for (let seed = 0; seed < 20; seed++) {
      const out = complete(request({ seed }, { topLogprobs: 20 }));
      for (const t of out.tokens) {
        expect(t.top).toHaveLength(20);
        for (let i = 1; i < t.top.length; i++)
          expect(t.top[i].logprob).toBeLessThanOrEqual(t.top[i - 1].logprob);
        const at = t.top.findIndex((a) => a.token === t.token);
        expect(at).toBeGreaterThanOrEqual(0);
        expect(t.top[at].logprob).toBe(t.logprob);
        if (at > 0) chosenNotFirst++;
        const mass = t.top.reduce((s, a) => s + Math.exp(a.logprob), 0);
        expect(mass).toBeLessThanOrEqual(1 + 1e-9);
        expect(new Set(t.top.map((a) => a.token)).size).toBe(20);
      }
    }
    // Sampling at temperature 1 sometimes picks a runner-up, as real models do.
    expect(chosenNotFirst).toBeGreaterThan(0);
  });

  it("cuts at max tokens with finish 'length'", () => {
    const full = complete(request());
    expect(full.finish).toBe("natural");
    const cut = complete(request({ maxTokens: 3 }));
    expect(cut.finish).toBe("length");
    expect(cut.tokens).toHaveLength(3);
    expect(cut.completionTokens).toBe(3);
    expect(full.text.startsWith(cut.text)).toBe(true);
  });

  it("cuts at the earliest stop sequence, even inside a token, and reports it", () => {
    const respond = () => "alpha beta gamma delta";
    const out = complete(request({}, { stops: ["delta", "mm"] }), respond);
    expect(out).toMatchObject({
      text: "alpha beta ga",
      finish: "stop",
      stopSequence: "mm",
      completionTokens: 3,
    });
    expect(out.tokens.map((t) => t.token)).toEqual(["alpha", " beta", " ga"]);
    // A stop sequence that only completes after max_tokens does not fire: length wins.
    const late = complete(request({ maxTokens: 2 }, { stops: ["delta"] }), respond);
    expect(late).toMatchObject({ text: "alpha beta", finish: "length", stopSequence: null });
  });

  it("uses scripted logprobs as given and rejects tokens that do not match the text", () => {
    const judge = () => ({
      text: "80",
      logprobs: [
        {
          token: "80",
          logprob: -0.2,
          top: [
            { token: "80", logprob: -0.2 },
            { token: "70", logprob: -2 },
          ],
        },
      ],
    });
    const out = complete(request({}, { topLogprobs: 20 }), judge);
    expect(out.tokens).toEqual([{ token: "80", logprob: -0.2, top: judge().logprobs[0].top }]);
    expect(() =>
      complete(request(), () => ({ text: "80", logprobs: [{ token: "8", logprob: -1 }] })),
    ).toThrow(/join to "8" but text is "80"/);
  });

  it("cuts a scripted answer at the content-filter marker", () => {
    const out = complete(request({}, { filterMarker: "BLOCK" }), () => "fine then BLOCK rest");
    expect(out).toMatchObject({ text: "fine then ", finish: "filter", stopSequence: null });
  });
});
