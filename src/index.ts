/**
 * emlab's public surface for scripts: load and run studies, add experiments
 * (`registerExperiment`), read results (their zod schemas), talk to models, and reach the
 * engine. Statistics live at `emlab/analysis`, white-box tools at `emlab/interp`, the persona
 * world and its organism at `emlab/world`. The CLI (`bin/emlab.js`) is a thin layer
 * over these.
 */
export { InputError, loadStudy, parseStudy } from "./config/load.ts";
export { type Study, StudySchema } from "./config/schema.ts";
export * as engine from "./engine/index.ts";
export * from "./models/index.ts";
export { html, SafeHtml } from "./report/escape.ts";
export * from "./results/index.ts";
export { RunStore } from "./runs/store.ts";
export * from "./study/index.ts";
