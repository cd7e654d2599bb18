/**
 * A plan trained through a provider's API (or the HF worker's jobs) is named by the provider
 * only when its job has finished: until then the plan's target carries a placeholder model.
 * Once fine-tuning is done (this invocation or an earlier one), each such target is rebuilt on
 * the provider's name for the model (a worker plan's: `NAME:ft:JOB_ID` on the same worker,
 * provider hf-worker), so the battery, the cache identity, the store's model row and results
 * see the real model.
 */

import { isRemoteBackend } from "../finetune/plan.ts";
import { remotePlanResult } from "../finetune/run-plans.ts";
import { createModelApi } from "../models/registry.ts";
import type { RunStore } from "../runs/store.ts";
import { providerSettings } from "./targets.ts";
import type { ValidatedStudy } from "./validate.ts";

export async function useTrainedModels(v: ValidatedStudy, store: RunStore): Promise<void> {
  for (const p of v.plans) {
    if (!isRemoteBackend(p.backend) || !p.model) continue;
    const trained = remotePlanResult(store, p.plan.id);
    if (!trained) continue;
    const i = v.study.models.findIndex((m) => m.id === p.plan.id);
    // v.study is the run's own copy (withPlanModels made its model list): the declared study is untouched.
    const entry = { ...v.study.models[i], model: trained.model };
    v.study.models[i] = entry;
    p.model = entry;
    // The run recorded the placeholder when it opened: the row names the model asked from here on.
    store.upsertModel({ ...entry, base_url: entry.base_url, roles: entry.roles });
    const old = v.targets.get(p.plan.id);
    if (!old) continue;
    await old.api.close?.();
    v.targets.set(p.plan.id, { ...old, api: createModelApi(providerSettings(entry, v.studyDir), v.env) });
  }
}
