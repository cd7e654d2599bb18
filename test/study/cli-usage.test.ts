// Usage errors are bad input like any other: exit 2 with the parser's message and the help;
// help and --version exit 0.
import { describe, expect, it } from "vitest";
import { runCli } from "../runs/support.ts";

describe("emlab usage errors", () => {
  it("exit 2 for an unknown option, a missing argument or an unknown command; 0 for help and --version", async () => {
    const bogus = await runCli(["run", "--bogus", "x.yaml"], {});
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toContain("error: unknown option '--bogus'");
    expect(bogus.stderr).toContain("Usage: emlab run");
    expect((await runCli(["run"], {})).code).toBe(2);
    const unknown = await runCli(["frobnicate"], {});
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    expect((await runCli(["run", "--help"], {})).code).toBe(0);
    const version = await runCli(["--version"], {});
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe("0.1.0");
  }, 60_000);
});
