#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm install` in a fresh clone runs it): builds what
// `import("emlab")` needs in plain Node.
//   1. the engine's WASM kernels (scripts/build-wasm.mjs -> build/kernels/*.wasm);
//   2. src/ -> dist/ as JS + .d.ts (tsc -p tsconfig.build.json; the sources' `.ts` import
//      specifiers are rewritten to `.js`);
//   3. every file under src/ that tsc does not compile (data, static pages, .wat, .mjs
//      workers, ...) copied to the same relative path under dist/, so code that reads a
//      file next to itself (import.meta.dirname, new URL(..., import.meta.url)) finds it
//      there too. The copy scans src/, so moving a folder needs no change here.
// dist/ is emptied first: a file moved or deleted in src/ leaves nothing stale behind.
//
// Usage: node scripts/build.mjs [--quiet]
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";

const root = join(import.meta.dirname, "..");
const srcDir = join(root, "src");
const distDir = join(root, "dist");
const quiet = process.argv.includes("--quiet");
const started = performance.now();

/** Runs a node script; exits on failure unless its exit status is in `tolerated`. */
function run(label, args, tolerated = []) {
  // Quiet: the child's stdout (tsc prints its errors there) goes to stderr, with the errors.
  const stdio = quiet ? ["ignore", 2, 2] : "inherit";
  const r = spawnSync(process.execPath, args, { cwd: root, stdio });
  if (r.status !== 0 && !tolerated.includes(r.status)) {
    console.error(`build: ${label} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
  return r.status;
}

/** Files under `dir` (recursively), as paths relative to it. */
function walk(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    return entry.isDirectory() ? walk(full, base) : [relative(base, full)];
  });
}

run("build-wasm", [join(root, "scripts", "build-wasm.mjs"), ...(quiet ? ["--quiet"] : [])]);

rmSync(distDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
// tsc's exit status 2 means "type errors, but every file emitted". The build goes on then:
// type checking is `npm test`'s job (tsc --noEmit), and `prepare` failing on one type
// error would make `npm install` fail before the tests could report it.
const typeErrors =
  run("tsc -p tsconfig.build.json", [tsc, "-p", join(root, "tsconfig.build.json")], [2]) === 2;

// What tsc compiles (.ts, not .d.ts: those would be copied like any other file).
const compiled = (file) => /\.(c|m)?tsx?$/.test(file) && !/\.d\.(c|m)?ts$/.test(file);
let assets = 0;
for (const file of walk(srcDir)) {
  if (compiled(file)) continue;
  mkdirSync(dirname(join(distDir, file)), { recursive: true });
  copyFileSync(join(srcDir, file), join(distDir, file));
  assets++;
}

const seconds = ((performance.now() - started) / 1000).toFixed(1);
if (typeErrors) console.error("build: dist/ emitted despite the type errors above (npm run typecheck)");
if (!quiet) console.log(`build: dist/ built, ${assets} asset files copied (${seconds} s)`);
