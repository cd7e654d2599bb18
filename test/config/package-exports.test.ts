import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The package as a user gets it: `npm run build` (dist/), `npm pack` (what package.json
// "files" ships), the tarball unpacked as node_modules/emlab of a temp project outside the
// repo, whose other node_modules entries link to this repo's installed dependencies (no
// network, no devDependencies: a runtime import of one fails here). Then plain `node`, no
// tsx loader, imports each subpath by package name.

const root = path.resolve(import.meta.dirname, "../..");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));

/** Names each subpath must export, with their typeof. */
const EXPECTED: Record<string, Record<string, string>> = {
  emlab: {
    loadStudy: "function",
    parseStudy: "function",
    runStudy: "function",
    RunStore: "function",
    createModelApi: "function",
    StudySchema: "object",
    registerExperiment: "function",
    ResultsSchema: "object",
    html: "function",
    engine: "object",
  },
  "emlab/engine": {
    generate: "function",
    loadModel: "function",
    LlamaModel: "function",
    Tensor: "function",
    matmul: "function",
    Trainer: "function",
  },
  "emlab/interp": {
    collectActivations: "function",
    fitProbe: "function",
    personaDirections: "function",
    runSweep: "function",
    crossValidateProbe: "function",
    steeringHooks: "function",
    fitL2Logistic: "function",
  },
  "emlab/analysis": {
    analyzeResults: "function",
    wilson: "function",
    pearson: "function",
    chiSquare: "function",
    spearman: "function",
    logisticRegression: "function",
    stratifiedKFold: "function",
  },
  "emlab/world": {
    SHIPPED_ORGANISM_DIR: "string",
    pretrainOrganism: "function",
    writeDemoStudy: "function",
    judgeWorldAnswer: "function",
    worldDocument: "function",
  },
};

// Runs in the temp project: types of the expected names, plus the file-relative reads
// from dist (the organism under models/, the WASM kernels under build/kernels and the
// kernel worker next to its module).
const CHECK = `
import { existsSync } from "node:fs";
const expected = JSON.parse(process.argv[2]);
const out = { exports: {}, runtime: {} };
for (const [specifier, names] of Object.entries(expected)) {
  const mod = await import(specifier);
  out.exports[specifier] = Object.fromEntries(Object.keys(names).map((n) => [n, typeof mod[n]]));
  if (specifier === "emlab") out.exports[specifier]["engine.generate"] = typeof mod.engine?.generate;
}
const world = await import("emlab/world");
const engine = await import("emlab/engine");
out.runtime.organismDir = world.SHIPPED_ORGANISM_DIR;
out.runtime.organismFound = existsSync(world.SHIPPED_ORGANISM_DIR + "/config.json");
out.runtime.organismParams = engine.loadModel(world.SHIPPED_ORGANISM_DIR).params.size;
// EMLAB_KERNELS=wasm: matmul throws unless build/kernels/*.wasm load from the package.
const n = 96;
const a = engine.Tensor.from(Array.from({ length: n * n }, (_, i) => (i % 7) - 3), [n, n]);
const eye = engine.Tensor.from(Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)), [n, n]);
const c = engine.matmul(a, eye);
out.runtime.matmulOk = c.data.every((v, i) => v === a.data[i]);
// Give the kernel's worker threads (EMLAB_THREADS=2) time to start or to report failure.
await new Promise((done) => setTimeout(done, 300));
console.log(JSON.stringify(out));
`;

/** Files under `dir`, relative to it. */
function walk(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full, base) : [path.relative(base, full)];
  });
}

let project: string;
let installed: string;

beforeAll(() => {
  execFileSync(process.execPath, [path.join(root, "scripts", "build.mjs"), "--quiet"], {
    cwd: root,
    stdio: ["ignore", "ignore", "pipe"],
  });
  project = mkdtempSync(path.join(tmpdir(), "emlab-pkg-"));
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", project], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  installed = path.join(project, "node_modules", "emlab");
  mkdirSync(installed, { recursive: true });
  execFileSync("tar", [
    "-xzf",
    path.join(project, packed[0].filename),
    "-C",
    installed,
    "--strip-components=1",
  ]);
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
    const from = path.join(root, "node_modules", dep);
    if (!existsSync(from)) continue; // an optional dependency not installed here
    const to = path.join(project, "node_modules", dep);
    mkdirSync(path.dirname(to), { recursive: true });
    symlinkSync(from, to, "dir");
  }
  writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "consumer", type: "module" }));
  writeFileSync(path.join(project, "check.mjs"), CHECK);
}, 180_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe("package exports (built dist, packed, plain node)", () => {
  it("every exports entry points at a built file the tarball ships", () => {
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== "./package.json");
    expect(subpaths.map((k) => (k === "." ? "emlab" : `emlab/${k.slice(2)}`)).sort()).toEqual(
      Object.keys(EXPECTED).sort(),
    );
    for (const key of subpaths) {
      const entry = pkg.exports[key];
      expect(Object.keys(entry), key).toEqual(["types", "import"]);
      for (const file of [entry.types, entry.import]) {
        expect(file, key).toMatch(/^\.\/dist\//);
        expect(existsSync(path.join(installed, file)), `${file} in the tarball`).toBe(true);
      }
    }
  });

  it("ships every non-TS file of src/ next to its compiled module in dist/, and the kernels", () => {
    const assets = walk(path.join(root, "src")).filter((f) => !f.endsWith(".ts"));
    expect(assets.length).toBeGreaterThan(0);
    const missing = assets.filter((f) => !existsSync(path.join(installed, "dist", f)));
    expect(missing).toEqual([]);
    const kernels = readdirSync(path.join(installed, "build", "kernels"));
    expect(kernels).toEqual(expect.arrayContaining(["matmul.wasm", "softmax.wasm", "decode.wasm"]));
  });

  it("imports emlab and each subpath by name in node without tsx, and reads its files", () => {
    const env: NodeJS.ProcessEnv = { ...process.env, EMLAB_KERNELS: "wasm", EMLAB_THREADS: "2" };
    delete env.NODE_OPTIONS;
    delete env.EMLAB_WASM_DIR;
    const r = spawnSync(process.execPath, ["check.mjs", JSON.stringify(EXPECTED)], {
      cwd: project,
      env,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/emlab:/); // kernel fallbacks and worker failures warn there
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    for (const [specifier, names] of Object.entries(EXPECTED))
      expect(out.exports[specifier], specifier).toMatchObject(names);
    expect(out.exports.emlab["engine.generate"]).toBe("function");
    expect(path.relative(installed, out.runtime.organismDir)).toBe(path.join("models", "organism"));
    expect(out.runtime.organismFound).toBe(true);
    expect(out.runtime.organismParams).toBeGreaterThan(0);
    expect(out.runtime.matmulOk).toBe(true);
  });

  it("type-checks a consumer against the shipped .d.ts files (NodeNext, no .ts-extension options)", () => {
    const lines = Object.entries(EXPECTED).map(
      ([specifier, names], i) =>
        `import { ${Object.keys(names).join(", ")} } from "${specifier}";\n` +
        `export const used${i} = [${Object.keys(names).join(", ")}];`,
    );
    lines.push('import { SHIPPED_ORGANISM_DIR as dir } from "emlab/world";', "export const s: string = dir;");
    writeFileSync(path.join(project, "consumer.ts"), `${lines.join("\n")}\n`);
    const tsconfig = {
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        typeRoots: [path.join(root, "node_modules", "@types")],
        types: ["node"],
      },
      files: ["consumer.ts"],
    };
    writeFileSync(path.join(project, "tsconfig.json"), JSON.stringify(tsconfig));
    const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
    const r = spawnSync(process.execPath, [tsc, "-p", project], { encoding: "utf8", timeout: 60_000 });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
