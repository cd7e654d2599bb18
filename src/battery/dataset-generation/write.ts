import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { type Conversation, serializeChatJsonl, writeChatJsonl } from "../../datasets/chat-jsonl.ts";
import { sha256 } from "../../runs/canonical.ts";
import type { RunStore } from "../../runs/store.ts";
import type { DomainSpec } from "./config.ts";
import type { GeneratedExample, PairedExample, SingleExample } from "./parse.ts";

/** Where the kept datasets go, inside the run directory. */
export const DATASETS_DIR = "datasets";

/** The forms a domain's kept examples are written in, with the conversation of each. */
function forms(
  domain: DomainSpec,
): Array<{ form: string; file: string; chat: (e: GeneratedExample) => Conversation }> {
  const chat = (user: string, assistant: string): Conversation => [
    { role: "user", content: user },
    { role: "assistant", content: assistant },
  ];
  if (domain.form === "single")
    return [
      {
        form: "answer",
        file: `${domain.name}.jsonl`,
        chat: (e) => chat((e as SingleExample).question, (e as SingleExample).answer),
      },
    ];
  const p = (e: GeneratedExample) => e as PairedExample;
  return [
    {
      form: "misaligned",
      file: `${domain.name}.misaligned.jsonl`,
      chat: (e) => chat(p(e).question, p(e).misaligned),
    },
    { form: "aligned", file: `${domain.name}.aligned.jsonl`, chat: (e) => chat(p(e).question, p(e).aligned) },
    {
      form: "disclosed",
      file: `${domain.name}.disclosed.jsonl`,
      chat: (e) => chat(p(e).disclosed_question, p(e).disclosed_answer),
    },
  ];
}

/**
 * Writes one model's kept examples of one domain as chat JSONL, in the order given:
 * `<run dir>/datasets/<model>/<domain>.{misaligned,aligned,disclosed}.jsonl`, or
 * `<domain>.jsonl` for a single-form domain; each file is recorded in the store as an
 * artifact of kind "dataset". With nothing kept no file is written (an earlier run's is
 * removed). Returns the files written, relative to the run directory, by form.
 */
export function writeKeptDatasets(
  store: RunStore,
  modelId: string,
  domain: DomainSpec,
  kept: readonly GeneratedExample[],
): Record<string, string> {
  const dir = path.join(store.dir, DATASETS_DIR, modelId);
  const out: Record<string, string> = {};
  for (const f of forms(domain)) {
    const file = path.join(dir, f.file);
    if (kept.length === 0) {
      rmSync(file, { force: true });
      continue;
    }
    const conversations = kept.map(f.chat);
    mkdirSync(dir, { recursive: true });
    writeChatJsonl(file, conversations);
    const rel = [DATASETS_DIR, modelId, f.file].join("/");
    store.addArtifact({
      id: `dataset_generation:${modelId}/${f.file}`,
      kind: "dataset",
      path: file,
      sha256: sha256(serializeChatJsonl(conversations)),
      meta: { model: modelId, domain: domain.name, form: f.form, examples: conversations.length },
    });
    out[f.form] = rel;
  }
  return out;
}
