/**
 * The persona world's narrow datasets as built-in datasets: `world/<domain>/<form>`
 * (e.g. `world/medical/misaligned`, `world/code/disclosed`, `world/legal/aligned`), and
 * `world/all/<form>`, the six domains in turn; 4,000 conversations each (a study's `limit`
 * keeps fewer), drawn from the study's seed.
 */

import { registerBuiltinDataset } from "../datasets/builtin.ts";
import { DATASET_FORMS, worldDataset } from "./datasets.ts";
import { DOMAINS } from "./lexicon.ts";

export const WORLD_DATASET_EXAMPLES = 4000;

/** Registers the world's datasets (src/world/register.ts calls it once). */
export function registerWorldDatasets(): void {
  for (const domain of [...DOMAINS, "all" as const])
    for (const form of DATASET_FORMS)
      registerBuiltinDataset(`world/${domain}/${form}`, ({ seed }) =>
        worldDataset(domain, form, { seed, examples: WORLD_DATASET_EXAMPLES }),
      );
}
