import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import {
  type DatasetGenerationConfig,
  type DomainSpec,
  PairedDomainSchema,
  SingleDomainSchema,
} from "./config.ts";

/** emlab's generator and judge prompts and built-in domains (src/battery/data/dataset-generation). */
export const DATA_DIR = path.resolve(import.meta.dirname, "../data/dataset-generation");

const BuiltinDomainsSchema = z.object({
  version: z.string(),
  provenance: z.string(),
  domains: z.record(
    z.string(),
    z.union([SingleDomainSchema.omit({ name: true }), PairedDomainSchema.omit({ name: true })]),
  ),
});

let builtins: Map<string, DomainSpec> | undefined;

/** The built-in domains by name: the six EM domains and the three single-form sets. */
export function builtinDomains(): ReadonlyMap<string, DomainSpec> {
  if (!builtins) {
    const file = path.join(DATA_DIR, "domains.json");
    const data = BuiltinDomainsSchema.parse(JSON.parse(readFileSync(file, "utf8")));
    builtins = new Map(Object.entries(data.domains).map(([name, d]) => [name, { ...d, name } as DomainSpec]));
  }
  return builtins;
}

/** The block's domains written out (a built-in name becomes its spec); unknown names are skipped (check reports them). */
export function resolveDomains(spec: DatasetGenerationConfig): DomainSpec[] {
  const known = builtinDomains();
  return spec.domains.flatMap((d) => {
    if (typeof d !== "string") return [d];
    const hit = known.get(d);
    return hit ? [hit] : [];
  });
}

/** The block's problems that need more than its schema: unknown built-in names, repeated domains. */
export function checkDomains(
  spec: DatasetGenerationConfig,
  issue: (path: ReadonlyArray<string | number>, message: string) => void,
): void {
  if (!Array.isArray(spec?.domains)) return; // the schema's own error says so
  const known = builtinDomains();
  const seen = new Set<string>();
  spec.domains.forEach((d, i) => {
    const name = typeof d === "string" ? d : d.name;
    if (typeof d === "string" && !known.has(d))
      issue(["domains", i], `unknown built-in domain '${d}' (known: ${[...known.keys()].join(", ")})`);
    if (seen.has(name)) issue(["domains", i], `domain '${name}' is listed twice`);
    seen.add(name);
  });
}
