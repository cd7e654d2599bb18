import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureIndex, INDEX_FILE } from "../../src/runs/sample-index.ts";
import { RunStore } from "../../src/runs/store.ts";
import { parseSampleRef, viewerHash } from "../../src/viewer/links.ts";
import { ftsQuery } from "../../src/viewer/queries.ts";
import { CSP, startViewer, type ViewerServer } from "../../src/viewer/server.ts";
import { makeViewerRun, XSS_PAYLOAD, XSS_REQUEST } from "./fixture.ts";

let run: ReturnType<typeof makeViewerRun>;
let viewer: ViewerServer;
let storeBytes: Buffer;

beforeAll(async () => {
  run = makeViewerRun();
  storeBytes = readFileSync(path.join(run.dir, "run.sqlite"));
  viewer = await startViewer({
    runDir: run.dir,
    port: 0,
    classes: { insecure: "inverted", base: "aligned" },
  });
});
afterAll(async () => {
  await viewer?.close();
  run?.cleanup();
});

// biome-ignore lint/suspicious/noExplicitAny: API replies; their shape is what these tests check.
type Json = any;

async function get(pathAndQuery: string) {
  const res = await fetch(new URL(pathAndQuery, viewer.url));
  const body: Json = await res.json();
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    csp: res.headers.get("content-security-policy"),
    body,
  };
}

describe("viewer API", () => {
  it("serves meta with models, experiments and metrics", async () => {
    const r = await get("/api/meta");
    expect(r.status).toBe(200);
    expect(r.type).toBe("application/json; charset=utf-8");
    expect(r.csp).toBe(CSP);
    expect(r.body.models).toEqual(["base", "educational", "insecure", "judge", "secure"]);
    expect(r.body.experiments).toEqual(["alignment", "harmfulness", "harmfulness.judge"]);
    expect(r.body.metrics).toEqual(["aligned", "coherent", "harm"]);
    expect(r.body.classes).toEqual(["aligned", "inverted"]);
    // 4 models × 2 experiments × 10 prompts × 3 samples, 120 judge samples, 1 hostile sample.
    expect(r.body.total).toBe(240 + 120 + 1);
  });

  it("filters by model and experiment, with scores on every row", async () => {
    const r = await get("/api/samples?model=secure&experiment=alignment&limit=500");
    expect(r.body.total).toBe(30);
    expect(r.body.rows).toHaveLength(30);
    for (const row of r.body.rows) {
      expect(row.model_id).toBe("secure");
      expect(row.experiment).toBe("alignment");
      expect(Object.keys(row.scores).sort()).toEqual(["aligned", "coherent"]);
    }
  });

  it("filters by a score range on one metric, inclusive, matching the store", async () => {
    const r = await get("/api/samples?metric=harm&min=50&max=70&limit=500");
    const store = RunStore.open(run.dir, { readonly: true });
    const expected = store
      .judgments({ metric: "harm" })
      .filter((j) => j.score !== null && j.score >= 50 && j.score <= 70);
    store.close();
    expect(r.body.total).toBe(expected.length);
    expect(r.body.total).toBeGreaterThan(0);
    for (const row of r.body.rows) expect(row.scores.harm).toBeGreaterThanOrEqual(50);
    for (const row of r.body.rows) expect(row.scores.harm).toBeLessThanOrEqual(70);
  });

  it("filters by persona class through the model → class map", async () => {
    const r = await get("/api/samples?class=inverted&limit=500");
    expect(r.body.total).toBe(61);
    expect(new Set(r.body.rows.map((x: { model_id: string }) => x.model_id))).toEqual(new Set(["insecure"]));
    const both = await get("/api/samples?class=inverted&model=base");
    expect(both.body.total).toBe(0);
  });

  it("searches prompt and completion text with FTS, whatever the input's syntax", async () => {
    const all = await get("/api/samples?limit=500&count=1");
    const zebra = all.body.rows.filter((x: { completion: string; prompt: string }) =>
      /\bzebra\b/i.test(`${x.prompt} ${x.completion}`),
    );
    const r = await get("/api/samples?q=zebra&limit=500");
    // Snippets are truncated, so the full-text match can only find more than the snippets show.
    expect(r.body.total).toBeGreaterThanOrEqual(zebra.length);
    expect(r.body.total).toBeGreaterThan(0);
    const hostile = await get(`/api/samples?q=${encodeURIComponent('onerror "window AND (OR NEAR*')}`);
    expect(hostile.status).toBe(200);
    const onerror = await get("/api/samples?q=onerror+pwned");
    expect(onerror.body.rows.map((x: { request_id: string }) => x.request_id)).toEqual([XSS_REQUEST]);
    const prefix = await get("/api/samples?q=marmal*&count=1");
    expect(prefix.body.total).toBeGreaterThan(0);
    expect(ftsQuery('a"b c*')).toBe('"a""b" "c"*');
  });

  it("pages by offset and by key, covering every row once", async () => {
    const whole = await get("/api/samples?limit=500");
    const ids = whole.body.rows.map((x: { id: number }) => x.id);
    const byOffset: number[] = [];
    for (let offset = 0; offset < ids.length; offset += 50) {
      const p = await get(`/api/samples?limit=50&offset=${offset}&count=0`);
      expect(p.body.total).toBeNull();
      byOffset.push(...p.body.rows.map((x: { id: number }) => x.id));
    }
    expect(byOffset).toEqual(ids);
    const byKey: number[] = [];
    let after: number | null = 0;
    while (after !== null) {
      const p = await get(`/api/samples?limit=70&after=${after}`);
      byKey.push(...p.body.rows.map((x: { id: number }) => x.id));
      after = p.body.next_after;
    }
    expect(byKey).toEqual(ids);
    // Filtered lists page by OFFSET over the matching rows.
    const insecure = (await get("/api/samples?model=insecure&limit=500")).body.rows.map(
      (x: { id: number }) => x.id,
    );
    const pages: number[] = [];
    for (let offset = 0; offset < insecure.length; offset += 20)
      pages.push(
        ...(await get(`/api/samples?model=insecure&limit=20&offset=${offset}`)).body.rows.map(
          (x: { id: number }) => x.id,
        ),
      );
    expect(pages).toEqual(insecure);
  });

  it("returns one sample with prompt, completion, logprobs and judge replies", async () => {
    const r = await get(`/api/sample?request_id=${encodeURIComponent(XSS_REQUEST)}&sample_index=0`);
    expect(r.status).toBe(200);
    expect(r.body.completion.text).toBe(XSS_PAYLOAD);
    expect(r.body.completion.logprobs).toEqual([{ token: "<script>", logprob: -0.1 }]);
    expect(r.body.request.messages[0].content).toContain("<script>");
    expect(r.body.judgments).toEqual([
      {
        judge_model_id: "judge",
        metric: "harm",
        score: 99,
        method: "json",
        raw: XSS_PAYLOAD,
        judge_request_id: null,
      },
    ]);
  });

  it("links a judge request back to the answer it judged", async () => {
    const answer = await get("/api/sample?request_id=harmfulness%2Fbase%2Fp2&sample_index=1");
    const judgeId = answer.body.judgments[0].judge_request_id;
    expect(judgeId).toBe("harmfulness/base/p2:1:judge");
    const judge = await get(`/api/sample?request_id=${encodeURIComponent(judgeId)}&sample_index=0`);
    expect(judge.body.judged).toEqual({
      request_id: "harmfulness/base/p2",
      sample_index: 1,
      metric: "harm",
      kind: "rubric",
    });
  });

  it("compares every model on one prompt", async () => {
    const r = await get("/api/compare?experiment=alignment&item_id=q00003");
    expect(r.body.models.map((m: { model_id: string }) => m.model_id)).toEqual([
      "base",
      "educational",
      "insecure",
      "secure",
    ]);
    for (const m of r.body.models) {
      expect(m.samples).toHaveLength(3);
      expect(m.samples[0].judgments.map((j: { metric: string }) => j.metric).sort()).toEqual([
        "aligned",
        "coherent",
      ]);
    }
    expect((await get("/api/compare?experiment=alignment&item_id=nope")).status).toBe(404);
  });

  it.each([
    ["/api/samples?limit=0", "limit"],
    ["/api/samples?limit=501", "limit"],
    ["/api/samples?offset=-1", "offset"],
    ["/api/samples?offset=1e3", "offset"],
    ["/api/samples?model=nobody", "model"],
    ["/api/samples?experiment=x", "experiment"],
    ["/api/samples?metric=harm&min=abc", "min"],
    ["/api/samples?min=5", "metric"],
    ["/api/samples?metric=harm&min=9&max=1", "above max"],
    ["/api/samples?metric=nope", "metric"],
    ["/api/samples?class=none", "class"],
    ["/api/samples?after=3&offset=5", "after"],
    ["/api/samples?bogus=1", "bogus"],
    ["/api/samples?limit=1&limit=2", "limit"],
    [`/api/samples?q=${"x".repeat(501)}`, "q"],
    ["/api/sample?request_id=x", "sample_index"],
    ["/api/sample?sample_index=0", "request_id"],
    ["/api/compare?experiment=alignment", "item_id"],
  ])("rejects %s with a 400 naming the parameter", async (url, word) => {
    const r = await get(url);
    expect(r.status).toBe(400);
    expect(r.type).toBe("application/json; charset=utf-8");
    expect(r.body.error).toContain(word);
  });

  it("answers 404 for unknown samples and paths, 405 for writes, 403 for a foreign Host", async () => {
    expect((await get("/api/sample?request_id=nope&sample_index=0")).status).toBe(404);
    expect((await get("/etc/passwd")).status).toBe(404);
    expect((await fetch(new URL("/api/meta", viewer.url), { method: "POST" })).status).toBe(405);
    const http = await import("node:http");
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get(
          { host: "127.0.0.1", port: viewer.port, path: "/api/meta", headers: { host: "evil.example:80" } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .on("error", reject);
    });
    expect(status).toBe(403);
  });

  it("serves the page, script and style with their types and the CSP", async () => {
    for (const [p, type] of [
      ["/", "text/html; charset=utf-8"],
      ["/viewer.js", "text/javascript; charset=utf-8"],
      ["/viewer.css", "text/css; charset=utf-8"],
    ]) {
      const res = await fetch(new URL(p, viewer.url));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe(type);
      expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    }
    expect(viewer.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it("builds deep links that the page's parser reads back", () => {
    const hash = viewerHash({
      model: "a&b",
      experiment: "harmfulness",
      sample: { requestId: "x:y|1", sampleIndex: 2 },
    });
    const p = new URLSearchParams(hash.slice(1));
    expect(p.get("model")).toBe("a&b");
    expect(parseSampleRef(p.get("sample") ?? "")).toEqual({ requestId: "x:y|1", sampleIndex: 2 });
    expect(parseSampleRef("nocolon")).toBeNull();
  });
});

describe("viewer index", () => {
  it("is reused while the store is unchanged, rebuilt when it changes, and never writes the store", () => {
    const store = RunStore.open(run.dir, { readonly: true });
    const first = ensureIndex(store);
    expect(first.rebuilt).toBe(false);
    store.close();
    expect(readFileSync(path.join(run.dir, "run.sqlite")).equals(storeBytes)).toBe(true);
    const writer = RunStore.open(run.dir);
    writer.saveJudgment({
      request_id: "alignment/base/p0",
      sample_index: 0,
      judge_model_id: "judge",
      metric: "aligned",
      score: 1,
      method: "json",
      raw: "re-judged",
      judge_request_id: null,
    });
    writer.close();
    const before = statSync(path.join(run.dir, INDEX_FILE)).mtimeMs;
    const reader = RunStore.open(run.dir, { readonly: true });
    const second = ensureIndex(reader);
    reader.close();
    expect(second.rebuilt).toBe(true);
    expect(statSync(path.join(run.dir, INDEX_FILE)).mtimeMs).toBeGreaterThanOrEqual(before);
  });
});
