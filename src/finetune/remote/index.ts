/** The fine-tuning API client of a remote backend, built from the study's root model entry. */
import type { ModelEntry } from "../../config/schema.ts";
import type { RemoteBackend } from "../plan.ts";
import { OpenAIFinetuneApi } from "./openai-jobs.ts";
import { TogetherFinetuneApi } from "./together-jobs.ts";
import type { RemoteFinetuneApi } from "./types.ts";
import { WorkerFinetuneApi } from "./worker-jobs.ts";

export function remoteFinetuneApi(
  backend: RemoteBackend,
  root: ModelEntry,
  env: NodeJS.ProcessEnv,
): RemoteFinetuneApi {
  switch (backend) {
    case "openai":
      return new OpenAIFinetuneApi(root, env);
    case "together":
      return new TogetherFinetuneApi(root, env);
    case "worker":
      return new WorkerFinetuneApi(root, env);
  }
}

export { FinetuneJobError, stageJobId, trainRemotePlan } from "./run-remote.ts";
export type { RemoteFinetuneApi } from "./types.ts";
