/**
 * The interp step's registered sections (src/interp/section.ts): after the built-in ones, each
 * section the study configures runs with the stage's models and a requester on the run's
 * scheduler and store; its block is parsed with its summary schema.
 */
import { parseSummary } from "../battery/pipeline.ts";
import type { InterpSchedulerDeps } from "../interp/requests.ts";
import { InterpRequester } from "../interp/requests.ts";
import type { InterpSectionContext } from "../interp/section.ts";
import { addRequesterCounts, type InterpStageCounts } from "../interp/study.ts";
import { InterpInterrupted } from "../interp/study-judge.ts";
import { registeredInterpSections } from "./registry.ts";

/** The study configures a registered interp section. */
export function configuresInterpSections(interp: Record<string, unknown> | undefined): boolean {
  return registeredInterpSections().some((s) => interp?.[s.name] !== undefined);
}

/** Every configured registered section's block, by name; null when interrupted. */
export async function runRegisteredInterpSections(
  ctx: Omit<InterpSectionContext, "requests">,
  scheduler: InterpSchedulerDeps,
  counts: InterpStageCounts,
): Promise<Record<string, unknown> | null> {
  const out: Record<string, unknown> = {};
  const configured = ctx.study.interp as Record<string, unknown> | undefined;
  const requests = new InterpRequester(scheduler);
  try {
    for (const section of registeredInterpSections()) {
      const spec = configured?.[section.name];
      if (spec === undefined) continue;
      ctx.log(`interp ${section.name}: running`);
      const block = await section.run({ ...ctx, requests }, spec);
      if (block === null) return null;
      out[section.name] = parseSummary(`interp section ${section.name}`, section.summary, block);
    }
  } catch (e) {
    if (e instanceof InterpInterrupted) return null;
    throw e;
  } finally {
    requests.finish();
    addRequesterCounts(counts, requests);
  }
  return out;
}
