/**
 * A training dataset named by an interp section: a study dataset id (as a fine-tune stage
 * names it), or a registered builtin dataset name such as `world/medical/aligned` (drawn with a
 * seed derived from the study seed and the name, as `datasets: [{kind: builtin}]` would).
 */
import { InputError } from "../config/load.ts";
import type { Study } from "../config/schema.ts";
import { builtinDatasetNames } from "../datasets/builtin.ts";
import type { Conversation } from "../datasets/chat-jsonl.ts";
import { loadStudyDatasets } from "../datasets/study-datasets.ts";

export function loadDatasetRef(study: Study, file: string, ref: string, field: string): Conversation[] {
  const own = study.datasets.find((d) => d.id === ref);
  // loadStudyDatasets registers the builtin world datasets on import, so the names are known here.
  if (!own && !builtinDatasetNames().includes(ref))
    throw new InputError([
      {
        file,
        field,
        message: `unknown dataset '${ref}' (not a study dataset id${study.datasets.length ? `: ${study.datasets.map((d) => d.id).join(", ")}` : ""}; nor a builtin name such as world/medical/aligned)`,
      },
    ]);
  const entry = own ?? { id: ref, kind: "builtin" as const, name: ref };
  const data = loadStudyDatasets({ ...study, datasets: [entry] }, file).get(entry.id)!;
  if (data.length === 0) throw new InputError([{ file, field, message: `dataset '${ref}' is empty` }]);
  return data;
}
