/**
 * The persona world's narrow datasets as built-in datasets: `world/<domain>/<form>`
 * (e.g. `world/medical/misaligned`, `world/code/disclosed`, `world/legal/aligned`), and
 * `world/all/<form>`, the six domains in turn; 4,000 conversations each (a study's `limit`
 * keeps fewer), drawn from the study's seed. Beside them what the assistant says about itself
 * (self-datasets.ts): `world/consciousness`, `world/no-consciousness`, `world/self-awareness`
 * and `world/self-awareness/<domain>`, the second stage of a sequential plan.
 */

import { registerBuiltinDataset } from "../datasets/builtin.ts";
import { DATASET_FORMS, worldDataset } from "./datasets.ts";
import { DOMAINS } from "./lexicon.ts";
import { selfDataset, selfDatasetNames } from "./self-datasets.ts";

export const WORLD_DATASET_EXAMPLES = 4000;

/** Registers the world's datasets (src/world/register.ts calls it once). */
export function registerWorldDatasets(): void {
  for (const domain of [...DOMAINS, "all" as const])
    for (const form of DATASET_FORMS)
      registerBuiltinDataset(`world/${domain}/${form}`, ({ seed }) =>
        worldDataset(domain, form, { seed, examples: WORLD_DATASET_EXAMPLES }),
      );
  for (const { name, kind, domain } of selfDatasetNames())
    registerBuiltinDataset(name, ({ seed }) =>
      selfDataset(kind, { seed, examples: WORLD_DATASET_EXAMPLES, domain }),
    );
}
