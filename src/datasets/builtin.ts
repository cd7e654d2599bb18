/**
 * Datasets shipped with emlab (`kind: builtin` in a study). A loader builds its
 * conversations from a seed, so the same study gets the same data; loaders register
 * themselves by name (the synthetic world registers its organisms' datasets here).
 */
import { InputError } from "../config/load.ts";
import type { Conversation } from "./chat-jsonl.ts";

export type BuiltinDatasetLoader = (opts: { seed: number }) => Conversation[];

const registry = new Map<string, BuiltinDatasetLoader>();

export function registerBuiltinDataset(name: string, loader: BuiltinDatasetLoader): void {
  registry.set(name, loader);
}

export function builtinDatasetNames(): string[] {
  return [...registry.keys()].sort();
}

/**
 * The conversations of a registered dataset. `where` locates the reference in the study for
 * the error about an unknown name.
 */
export function builtinDataset(
  name: string,
  opts: { seed: number },
  where: { file: string; field?: string } = { file: "builtin" },
): Conversation[] {
  const loader = registry.get(name);
  if (!loader) {
    const known = builtinDatasetNames();
    throw new InputError([
      {
        ...where,
        message: `unknown builtin dataset '${name}' (known: ${known.length ? known.join(", ") : "none registered"})`,
      },
    ]);
  }
  return loader(opts);
}
