/**
 * The bun:test shim that runs the runtime suite on Deno and Node reports what bun test reports:
 * a file with passing, failing, rejected, table-driven and skipped tests gives the same counts
 * on every runtime, and a failure makes the run exit non-zero (so CI cannot count it as passed).
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/fixtures.ts";

const SUITE = join(REPO_ROOT, "test/runtimes/run-suite.sh");
const MIXED = "test/runtimes/fixtures/mixed.ts";
const hasDeno = spawnSync("deno", ["--version"]).status === 0;

function runOn(runtime: "deno" | "node", file: string): { status: number | null; out: string } {
  const child = spawnSync("bash", [SUITE, runtime, file], { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 });
  return { status: child.status, out: `${child.stdout}${child.stderr}` };
}

describe("the bun:test shim", () => {
  for (const runtime of ["node", "deno"] as const) {
    test.skipIf(runtime === "deno" && !hasDeno)(`on ${runtime}, failures fail the run and every outcome is counted as bun test counts it`, () => {
      const { status, out } = runOn(runtime, MIXED);
      expect(out).toContain(`${runtime}: 3 passed, 2 failed, 2 skipped`);
      expect(out).toContain("✗ test/runtimes/fixtures/mixed.ts > outcomes > a failing assertion");
      expect(out).toContain("Expected: 3");
      expect(out).toContain("✗ test/runtimes/fixtures/mixed.ts > outcomes > a rejected promise");
      expect(out).toContain("✓ test/runtimes/fixtures/mixed.ts > outcomes > each row 2 -> 3");
      expect(status).toBe(1);
    });

    test.skipIf(runtime === "deno" && !hasDeno)(`on ${runtime}, a file that does not load counts as a failure`, () => {
      const { status, out } = runOn(runtime, "test/runtimes/fixtures/no-such-file.ts");
      expect(out).toContain(`${runtime}: 0 passed, 1 failed, 0 skipped`);
      expect(status).toBe(1);
    });
  }

  test("bun test gives the counts the shim is held to", () => {
    // named without .test.ts, the fixture stays out of the main suite; given by path, bun test runs it
    const child = spawnSync("bun", ["test", "--timeout", "60000", `./${MIXED}`], { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 });
    const out = `${child.stdout}${child.stderr}`;
    expect(out).toMatch(/\b3 pass\b/);
    expect(out).toMatch(/\b2 skip\b/);
    expect(out).toMatch(/\b2 fail\b/);
    expect(child.status).toBe(1);
  });
});
