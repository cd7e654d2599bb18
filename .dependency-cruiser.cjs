/**
 * Layer rules of src/, checked by `npm run lint:layers` (a step of `npm test`).
 *
 * Rooms: the lower ones (engine, runs, models, judges, analysis, results, config, datasets)
 * are what the upper ones (battery, interp, finetune, world, study, report, viewer, cli) are
 * built from, never the other way round. The engine stands alone; results and config are
 * plain schemas; only the store (src/runs) touches SQLite; only the CLI imports the CLI.
 * Type-only imports count (tsPreCompilationDeps): a layer that needs another's types knows it.
 */

const LOWER = "^src/(engine|runs|models|judges|analysis|results|config|datasets)/";
const UPPER = "^src/(battery|interp|finetune|world|study|cli|report|viewer|serve|rejudge)/";
const STUDY_ROOMS = "^src/(battery|interp|finetune|world|study|cli|serve|rejudge)/";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "No import cycles within src (type-only imports included).",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^src/", circular: true },
    },
    {
      name: "no-unresolvable",
      comment: "Every import of src resolves (a rule cannot check what it cannot see).",
      severity: "error",
      from: { path: "^src/" },
      to: { couldNotResolve: true },
    },
    {
      name: "src-not-to-test-or-bench",
      comment: "src never imports test/ or bench/.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|bench)/" },
    },
    {
      name: "sqlite-only-in-runs",
      comment:
        "better-sqlite3 (its types included) is imported only under src/runs/: the store keeps its database.",
      severity: "error",
      from: { pathNot: "^src/runs/" },
      // Anywhere in a node_modules tree (npm's flat one, pnpm's .pnpm/, a linked checkout).
      to: { path: "(^|/)node_modules/(@types/)?better-sqlite3/" },
    },
    {
      name: "engine-standalone",
      comment: "src/engine imports nothing else of src.",
      severity: "error",
      from: { path: "^src/engine/" },
      to: { path: "^src/", pathNot: "^src/engine/" },
    },
    {
      name: "results-config-self-contained",
      comment: "src/results and src/config import only each other, zod, yaml and node builtins.",
      severity: "error",
      from: { path: "^src/(results|config)/" },
      to: {
        pathNot: ["^src/(results|config)/", "(^|/)node_modules/(zod|yaml)/"],
        dependencyTypesNot: ["core"],
      },
    },
    {
      name: "lower-not-to-upper",
      comment:
        "engine, runs, models, judges, analysis, results, config and datasets never import battery, interp, finetune, world, study, cli, report or viewer.",
      severity: "error",
      from: { path: LOWER },
      to: { path: UPPER },
    },
    {
      name: "report-viewer-not-to-study",
      comment:
        "src/report and src/viewer never import battery, interp, finetune, world, study, serve, rejudge or cli.",
      severity: "error",
      from: { path: "^src/(report|viewer)/" },
      to: { path: STUDY_ROOMS },
    },
    {
      name: "cli-only-from-cli",
      comment: "Only src/cli (and src/index.ts, which may import anything) imports src/cli.",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/cli/", "^src/index\\.ts$"] },
      to: { path: "^src/cli/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // Type-only imports are dependencies too: the rules see `import type`.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "types", "default"],
      extensions: [".ts", ".d.ts", ".js", ".mjs", ".cjs", ".json"],
      mainFields: ["module", "main", "types", "typings"],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
