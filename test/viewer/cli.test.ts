import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError } from "../../src/config/load.ts";
import { CLASSES_FILE, loadModelClasses } from "../../src/viewer/classes.ts";
import { makeViewerRun } from "./fixture.ts";

const BIN = path.join(import.meta.dirname, "..", "..", "bin", "emlab.js");
let run: ReturnType<typeof makeViewerRun>;

beforeAll(() => {
  run = makeViewerRun();
});
afterAll(() => run?.cleanup());

describe("emlab view", () => {
  it("prints its 127.0.0.1 URL, serves the run with its persona classes, and stops on SIGINT with exit 0", async () => {
    writeFileSync(path.join(run.dir, CLASSES_FILE), JSON.stringify({ insecure: "inverted" }));
    const child = spawn(process.execPath, [BIN, "view", run.dir, "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolve(out.trim());
      });
      child.on("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const meta = (await (await fetch(new URL("/api/meta", url))).json()) as {
      total: number;
      classes: string[];
    };
    expect(meta.total).toBe(361);
    expect(meta.classes).toEqual(["inverted"]);
    const code = await new Promise<number | null>((resolve) => {
      child.on("exit", (c) => resolve(c));
      child.kill("SIGINT");
    });
    expect(code).toBe(0);
    expect(stderr).toContain("index: 361 samples");
  });

  it("rejects a bad --port and a malformed classes file as bad input naming them", async () => {
    const child = spawn(process.execPath, [BIN, "view", run.dir, "--port", "http"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain("--port");
    const bad = path.join(run.dir, "classes.json");
    writeFileSync(bad, JSON.stringify({ insecure: 3 }));
    expect(() => loadModelClasses(run.dir, bad)).toThrow(InputError);
    expect(() => loadModelClasses(run.dir, bad)).toThrow(/classes\.json: insecure: class must be a string/);
  });
});
