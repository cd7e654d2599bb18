import { z } from "zod";
import { studySchema } from "./schema.ts";

/** JSON Schema of a study file (the input side: defaults are optional). */
export function studyJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(studySchema(), { io: "input", unrepresentable: "any" }),
    title: "emlab study",
  };
}
