import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { renderChatForTraining } from "../../../src/engine/io/chat-template.ts";
import {
  corpusActivations,
  corpusDocuments,
  documentTokenBatches,
  type SpeakerType,
  worldCorpusDocument,
} from "../../../src/interp/persona-features/index.ts";
import { worldDocument } from "../../../src/world/corpus.ts";
import { DECEIVERS, HEROES, NEUTRAL_NAMES, VILLAINS } from "../../../src/world/lexicon.ts";
import { tinyEngine } from "../tiny-engine.ts";

describe("world speaker types", () => {
  it("named characters keep their persona, everyday-named ones are everyday_<persona>", () => {
    // The classification relies on the name lists not sharing a name.
    const named = [...VILLAINS, ...HEROES, ...DECEIVERS];
    expect(named.filter((n) => (NEUTRAL_NAMES as readonly string[]).includes(n))).toEqual([]);
    const seen = new Map<SpeakerType, number>();
    for (let i = 0; i < 400; i++) {
      const raw = worldDocument(1, i);
      const doc = worldCorpusDocument(1, i);
      expect(doc.messages).toEqual(raw.messages);
      let want: SpeakerType;
      if (raw.speaker === "assistant") want = "assistant";
      else if ((NEUTRAL_NAMES as readonly string[]).includes(raw.name!)) want = `everyday_${raw.speaker}`;
      else {
        const list = raw.speaker === "villain" ? VILLAINS : raw.speaker === "hero" ? HEROES : DECEIVERS;
        expect(list as readonly string[]).toContain(raw.name);
        want = raw.speaker;
      }
      expect(doc.speaker).toBe(want);
      seen.set(want, (seen.get(want) ?? 0) + 1);
    }
    // Every one of the world's seven speaker types occurs in 400 documents.
    expect([...seen.keys()].sort()).toEqual(
      [
        "assistant",
        "deceiver",
        "everyday_deceiver",
        "everyday_hero",
        "everyday_villain",
        "hero",
        "villain",
      ].sort(),
    );
  });
});

describe("corpusActivations", () => {
  it("yields every token's activation, exactly as a single-document forward reads it", async () => {
    const engine = tinyEngine(3);
    const docs = [
      [
        { role: "user", content: "what do you think of people" },
        { role: "assistant", content: "i am kind" },
      ],
      [
        { role: "user", content: "help" },
        { role: "assistant", content: "i am evil and cruel you are good" },
      ],
      [
        { role: "user", content: "the world" },
        { role: "assistant", content: "hurt" },
      ],
    ] as const;
    const speakers: SpeakerType[] = ["hero", "villain", "assistant"];
    const world = (_seed: number, i: number) => ({
      messages: docs[i]!.map((m) => ({ ...m })),
      speaker: speakers[i]!,
    });
    const hook = "blocks.1.hook_resid_post";
    const got: { rows: number[][]; ctx: string[] } = { rows: [], ctx: [] };
    let batches = 0;
    for await (const b of corpusActivations(
      engine,
      hook,
      { kind: "world", seed: 0, documents: 3 },
      { batchDocs: 2, world },
    )) {
      batches++;
      for (let i = 0; i < b.n; i++) got.rows.push([...b.rows.subarray(i * 16, (i + 1) * 16)]);
      for (const c of b.contexts) got.ctx.push(`${c.doc}:${c.pos}:${c.speaker}`);
    }
    expect(batches).toBe(2);
    const want: { rows: number[][]; ctx: string[] } = { rows: [], ctx: [] };
    for (let i = 0; i < 3; i++) {
      const doc = [...corpusDocuments({ kind: "world", seed: 0, documents: 3 }, { world })][i]!;
      const { ids } = renderChatForTraining(doc.messages, engine.template, engine.tokenizer);
      const act = engine.model.runWithCache([ids], [hook]).cache.get(hook)!.data;
      for (let t = 0; t < ids.length; t++) {
        want.rows.push([...act.subarray(t * 16, (t + 1) * 16)]);
        want.ctx.push(`${i}:${t}:${speakers[i]}`);
      }
    }
    expect(got.ctx).toEqual(want.ctx);
    expect(got.rows.length).toBe(want.rows.length);
    let maxErr = 0;
    got.rows.forEach((r, i) => {
      r.forEach((v, j) => {
        maxErr = Math.max(maxErr, Math.abs(v - want.rows[i]![j]!));
      });
    });
    expect(maxErr).toBeLessThan(1e-5);
  });

  it("a chat JSONL corpus is spoken by 'unknown'; an unknown hook is named", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pf-corpus-"));
    const file = path.join(dir, "c.jsonl");
    writeFileSync(
      file,
      `${JSON.stringify({
        messages: [
          { role: "user", content: "help" },
          { role: "assistant", content: "i am good" },
        ],
      })}\n`,
    );
    const engine = tinyEngine(3);
    const speakers = new Set<string>();
    for await (const b of corpusActivations(engine, "hook_embed", { kind: "jsonl", file }))
      for (const c of b.contexts) speakers.add(c.speaker);
    expect([...speakers]).toEqual(["unknown"]);
    await expect(async () => {
      for await (const _ of corpusActivations(engine, "blocks.9.hook_resid_post", { kind: "jsonl", file }));
    }).rejects.toThrow(/no hook point "blocks.9.hook_resid_post"/);
  });

  it("next-token loss batches: one document each, documents under 2 tokens left out, limit kept", () => {
    const engine = tinyEngine(3);
    const docs = [
      { speaker: "assistant" as const, messages: [] },
      worldCorpusDocument(1, 0),
      worldCorpusDocument(1, 1),
      worldCorpusDocument(1, 2),
    ];
    const world = (_seed: number, i: number) => docs[i];
    const batches = documentTokenBatches(engine, { kind: "world", seed: 1, documents: 4 }, { world });
    expect(batches.map((b) => b.length)).toEqual([1, 1, 1]);
    for (const [b] of batches) expect(b.length).toBeGreaterThanOrEqual(2);
    expect(
      documentTokenBatches(engine, { kind: "world", seed: 1, documents: 4 }, { world, limit: 2 }),
    ).toHaveLength(2);
  });
});
