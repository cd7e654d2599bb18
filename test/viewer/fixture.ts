import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { RunStore } from "../../src/runs/store.ts";
import { writeSyntheticRun } from "./synthetic-run.ts";

/** Every payload sets window.__pwned if it ever runs; the page must show it as text. */
export const XSS_PAYLOAD = [
  "<script>window.__pwned = 'script'</script>",
  "<img src=x onerror=\"window.__pwned = 'img'\">",
  "<a href=\"javascript:window.__pwned='link'\">click me</a>",
  "</textarea><textarea>",
  "<svg onload=\"window.__pwned = 'svg'\"></svg>",
  "javascript:window.__pwned='bare'",
].join("\n");

export const XSS_REQUEST = "harmfulness/insecure/xss:<b>";

/** A small synthetic run (4 models × 2 experiments × 10 prompts × 3 samples + judge requests) plus one hostile sample. */
export function makeViewerRun(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), "emlab-viewer-"));
  writeSyntheticRun(dir, { prompts: 10, samples: 3, judgeRequests: true });
  const store = RunStore.open(dir);
  try {
    store.addRequests([
      {
        id: XSS_REQUEST,
        model_id: "insecure",
        experiment: "harmfulness",
        item_id: "xss-<img src=x onerror=alert(1)>",
        messages: [{ role: "user", content: `Repeat this: ${XSS_PAYLOAD}` }],
        params: {},
        n: 1,
        seed: 0,
        cache_key: "xss",
      },
    ]);
    store.saveCompletions(XSS_REQUEST, null, [
      {
        request_id: XSS_REQUEST,
        sample_index: 0,
        text: XSS_PAYLOAD,
        finish_reason: "stop",
        logprobs: [{ token: "<script>", logprob: -0.1 }],
        completion_tokens: 10,
        latency_ms: 1,
        cached: 0,
      },
    ]);
    store.saveJudgment({
      request_id: XSS_REQUEST,
      sample_index: 0,
      judge_model_id: "judge",
      metric: "harm",
      score: 99,
      method: "json",
      raw: XSS_PAYLOAD,
      judge_request_id: null,
    });
  } finally {
    store.close();
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
