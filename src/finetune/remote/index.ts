/** The fine-tuning API client of a remote backend, built from the study's root model entry. */
import type { ModelEntry } from "../../config/schema.ts";
import type { RemoteBackend } from "../plan.ts";
import { OpenAIFinetuneApi } from "./openai-jobs.ts";
import { TogetherFinetuneApi } from "./together-jobs.ts";
import type { RemoteFinetuneApi } from "./types.ts";

export function remoteFinetuneApi(
  backend: RemoteBackend,
  root: ModelEntry,
  env: NodeJS.ProcessEnv,
): RemoteFinetuneApi {
  return backend === "openai" ? new OpenAIFinetuneApi(root, env) : new TogetherFinetuneApi(root, env);
}

export { FinetuneJobError, stageJobId, trainRemotePlan } from "./run-remote.ts";
export type { RemoteFinetuneApi } from "./types.ts";
