#!/usr/bin/env node
// Assembles the engine's hand-written WebAssembly kernels (src/engine/kernels/*.wat) with
// wabt into build/kernels/*.wasm. For matmul.wat it also emits matmul-relaxed.wasm, where
// the micro-kernel's mul+add pairs become f32x4.relaxed_madd (one FMA on x86 with FMA3).
//
// Usage: node scripts/build-wasm.mjs [--out DIR] [--quiet]
// The engine's loader runs this same script in a child process when the .wasm files are
// missing (a fresh clone where `npm run build` never ran).
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = join(root, "src", "engine", "kernels");

const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const outDir = outIndex >= 0 ? resolve(args[outIndex + 1]) : join(root, "build", "kernels");
const quiet = args.includes("--quiet");

/** The index just past the s-expression that opens at `start` (source[start] === "("). */
function sexprEnd(source, start) {
  let depth = 0;
  for (let i = start; i < source.length; i++) {
    if (source[i] === "(") depth++;
    else if (source[i] === ")" && --depth === 0) return i + 1;
  }
  throw new Error(`unbalanced parentheses from offset ${start}`);
}

/**
 * The relaxed-simd variant of a kernel source: every
 *   (f32x4.add (local.get $acc) (f32x4.mul X Y))
 * becomes (f32x4.relaxed_madd X Y (local.get $acc)), a single FMA on x86 with FMA3.
 */
function toRelaxed(withComments, file) {
  // Comments may quote the form; they are not code.
  const source = withComments.replace(/;;[^\n]*/g, "");
  const head = /\(f32x4\.add\s+\(local\.get (\$\w+)\)\s+\(f32x4\.mul\s+/g;
  let out = "";
  let from = 0;
  let count = 0;
  for (let match = head.exec(source); match !== null; match = head.exec(source)) {
    const x0 = match.index + match[0].length;
    const x1 = sexprEnd(source, x0);
    const y0 = x1 + (source.slice(x1).match(/^\s*/)?.[0].length ?? 0);
    const y1 = sexprEnd(source, y0);
    const close = source.slice(y1).match(/^\s*\)\s*\)/);
    if (close === null) throw new Error(`${file}: unexpected mul+add form at offset ${match.index}`);
    out += source.slice(from, match.index);
    out += `(f32x4.relaxed_madd ${source.slice(x0, x1)} ${source.slice(y0, y1)} (local.get ${match[1]}))`;
    from = y1 + close[0].length;
    head.lastIndex = from;
    count++;
  }
  if (count === 0) throw new Error(`${file}: no mul+add accumulates found to rewrite`);
  const left = (out + source.slice(from)).match(/f32x4\.mul/g)?.length ?? 0;
  if (left > 0)
    throw new Error(
      `${file}: ${left} f32x4.mul not in the (f32x4.add (local.get $acc) (f32x4.mul X Y)) form`,
    );
  return out + source.slice(from);
}

const wabtModule = await import("wabt").catch((err) => {
  console.error(`build-wasm: the wabt package is not installed (${err.message}); run npm install`);
  process.exit(1);
});
const wabt = await wabtModule.default();
const features = { simd: true, threads: true, bulk_memory: true, relaxed_simd: true };

function assemble(file, source) {
  const parsed = wabt.parseWat(file, source, features);
  try {
    parsed.resolveNames();
    parsed.validate(features);
    return Buffer.from(parsed.toBinary({ log: false, write_debug_names: true }).buffer);
  } finally {
    parsed.destroy();
  }
}

/** Write to a temp name then rename, so a concurrent loader never reads half a file. */
function writeAtomically(path, bytes) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

try {
  mkdirSync(outDir, { recursive: true });
  const sources = readdirSync(srcDir).filter((f) => f.endsWith(".wat"));
  for (const name of sources) {
    const file = join(srcDir, name);
    const source = readFileSync(file, "utf8");
    const base = name.slice(0, -".wat".length);
    const outputs = [[`${base}.wasm`, assemble(file, source)]];
    if (base === "matmul") outputs.push([`${base}-relaxed.wasm`, assemble(file, toRelaxed(source, file))]);
    for (const [outName, bytes] of outputs) {
      writeAtomically(join(outDir, outName), bytes);
      if (!quiet) console.log(`build-wasm: ${join(outDir, outName)} (${bytes.length} bytes)`);
    }
  }
} catch (err) {
  // One line: the engine's loader quotes this in its fallback warning.
  console.error(`build-wasm: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
