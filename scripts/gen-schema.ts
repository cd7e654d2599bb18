/**
 * Writes schema/study.schema.json from the zod study schema, for editors (YAML language
 * server: `# yaml-language-server: $schema=../schema/study.schema.json`). A test checks
 * the committed file is up to date: run `npm run schema` after changing src/config/schema.ts.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { studyJsonSchema } from "../src/config/json-schema.ts";
// emlab's own registered blocks (battery.dataset_generation) are part of the editor schema.
import "../src/study/builtins.ts";

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "schema", "study.schema.json");
writeFileSync(out, `${JSON.stringify(studyJsonSchema(), null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
