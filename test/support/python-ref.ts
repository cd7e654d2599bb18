// The Python reference environment (.venv-ref: transformers, tokenizers, jinja2 and what
// scripts/reference/requirements.txt lists), made by .ci/run before `npm test`:
//   python3 -m venv .venv-ref && .venv-ref/bin/pip install -r scripts/reference/requirements.txt
// Tests that compare emlab with the reference libraries run their scripts with `refPython`,
// and skip (printing `skipReason`) when the environment is absent.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export const REF_VENV = join(import.meta.dirname, "../../.venv-ref");
const python = join(REF_VENV, "bin", "python");

/** The reference venv's python, or null when the venv is absent. */
export const refPython: string | null = existsSync(python) ? python : null;

/** Why reference tests skip (undefined when they run). */
export const skipReason: string | undefined = refPython
  ? undefined
  : `no Python reference environment at ${REF_VENV} (python3 -m venv .venv-ref && .venv-ref/bin/pip install -r scripts/reference/requirements.txt): reference tests skipped`;

/** Prints the skip reason once per test file; returns true when the reference is absent. */
export function skipWithoutRef(what: string): boolean {
  if (refPython) return false;
  console.warn(`${what}: ${skipReason}`);
  return true;
}

// The torch reference environment (.venv-torch: torch, transformers and what
// scripts/reference/requirements-torch.txt lists), made by .ci/run when the disk has room for
// torch's ~5.4 GB; tests that run transformers' models use `torchPython` and skip without it.
export const TORCH_VENV = join(import.meta.dirname, "../../.venv-torch");
const torchExe = join(TORCH_VENV, "bin", "python");

/** The torch venv's python, or null when the venv is absent. */
export const torchPython: string | null = existsSync(torchExe) ? torchExe : null;

/** Why torch reference tests skip (undefined when they run). */
export const torchSkipReason: string | undefined = torchPython
  ? undefined
  : `no torch reference environment at ${TORCH_VENV} (.ci/run makes it when 12 GB are free: python3 -m venv .venv-torch && .venv-torch/bin/pip install -r scripts/reference/requirements-torch.txt): torch reference tests skipped`;

/** Prints the skip reason once per test file; returns true when the torch venv is absent. */
export function skipWithoutTorch(what: string): boolean {
  if (torchPython) return false;
  console.warn(`${what}: ${torchSkipReason}`);
  return true;
}

/**
 * Why the export backend's TRL / PEFT checks skip (undefined when they run): no torch venv, or
 * one without trl or peft. Looks for the packages without importing them (an import of trl
 * takes seconds).
 */
export function trlSkipReason(): string | undefined {
  if (!torchPython) return torchSkipReason;
  const found = execFileSync(
    torchPython,
    [
      "-c",
      "import importlib.util as u; print(','.join(m for m in ['trl', 'peft'] if u.find_spec(m) is None))",
    ],
    { encoding: "utf8", timeout: 60_000 },
  ).trim();
  return found
    ? `.venv-torch lacks ${found} (.venv-torch/bin/pip install -r scripts/reference/requirements-trl.txt, then --no-deps the pinned transformers)`
    : undefined;
}
