/**
 * The `datasets` section of a study, loaded: every dataset is read and checked (all of them,
 * used or not), so a bad file is reported before a run writes anything.
 */
import path from "node:path";
import { InputError, type InputProblem } from "../config/load.ts";
import type { Study } from "../config/schema.ts";
import { deriveSeed } from "../runs/canonical.ts";
import { builtinDataset } from "./builtin.ts";
import { type Conversation, conversationProblems, readChatJsonl } from "./chat-jsonl.ts";

/** Conversations by dataset id. */
export type LoadedDatasets = Map<string, Conversation[]>;

export function loadStudyDatasets(study: Study, studyFile: string): LoadedDatasets {
  const out: LoadedDatasets = new Map();
  const problems: InputProblem[] = [];
  study.datasets.forEach((d, i) => {
    try {
      if (d.kind === "chat_jsonl") {
        const file = path.resolve(path.dirname(studyFile), d.path!);
        // Errors name the path as the study wrote it, like every other file a study names.
        out.set(d.id, readChatJsonl(file, { limit: d.limit, name: d.path }));
      } else {
        const where = { file: studyFile, field: `datasets[${i}].name` };
        const all = builtinDataset(d.name!, { seed: deriveSeed(study.seed, "dataset", d.id) }, where);
        // A loader's output gets the same checks as a file's.
        const bad = all.flatMap((messages, k) =>
          conversationProblems({ messages }, `builtin:${d.name}`).map((p) => ({
            ...p,
            field: `[${k}].${p.field ?? ""}`,
          })),
        );
        if (bad.length > 0) throw new InputError(bad.slice(0, 20));
        if (all.length === 0)
          throw new InputError([{ ...where, message: `'${d.name}' holds no conversations` }]);
        out.set(d.id, d.limit === undefined ? all : all.slice(0, d.limit));
      }
    } catch (e) {
      if (e instanceof InputError) problems.push(...e.problems);
      else throw e;
    }
  });
  if (problems.length > 0) throw new InputError(problems);
  return out;
}
