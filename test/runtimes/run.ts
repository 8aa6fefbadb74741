/**
 * Runs bun:test files on the runtime executing this script (Deno or Node; see the README of
 * test/runtimes): imports each file with `bun:test` mapped to the shim, runs what it
 * registered in order, as bun test does, prints one line per test, and ends with
 * `<runtime>: N passed, N failed, N skipped` (what .ci/run counts). Exits 1 when anything failed.
 *
 * usage: <runtime command> test/runtimes/run.ts [--timeout MS] <test file>...
 */
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { collectInto, newSuite, type Suite, type TestCase } from "./bun-test-shim.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

const tally: Tally = { passed: 0, failed: 0, skipped: 0 };

function describeError(error: unknown): string {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return text
    .split("\n")
    .slice(0, 12)
    .map((line) => `    ${line}`)
    .join("\n");
}

/** Runs `fn` with a time limit; resolves to the error it threw, or null. */
async function attempt(fn: () => unknown, timeoutMs: number, what: string): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(fn),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return null;
  } catch (error) {
    return error ?? new Error(`${what} threw ${String(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

function countTests(suite: Suite): number {
  return suite.children.reduce((n, child) => n + ("children" in child ? countTests(child) : 1), 0);
}

/**
 * Runs a suite: its beforeAll hooks, then each child in order (tests wrapped in every
 * enclosing beforeEach/afterEach), then its afterAll hooks. A failing beforeAll fails every
 * test below it, as in bun test.
 */
async function runSuite(suite: Suite, path: string[], eachHooks: { before: Suite[]; after: Suite[] }, timeoutMs: number, skipped: boolean): Promise<void> {
  const skip = skipped || suite.skip;
  const here = [...path, suite.name];
  if (skip) {
    tally.skipped += countTests(suite);
    return;
  }
  for (const hook of suite.beforeAll) {
    const error = await attempt(hook, timeoutMs, `beforeAll in ${here.join(" > ")}`);
    if (error) {
      const n = countTests(suite);
      tally.failed += n;
      console.log(`✗ ${here.join(" > ")}: beforeAll failed (${n} test(s) counted as failed)\n${describeError(error)}`);
      await runAfterAll(suite, here, timeoutMs);
      return;
    }
  }
  const hooks = { before: [...eachHooks.before, suite], after: [suite, ...eachHooks.after] };
  for (const child of suite.children) {
    if ("children" in child) await runSuite(child, here, hooks, timeoutMs, false);
    else await runTest(child, here, hooks, timeoutMs);
  }
  await runAfterAll(suite, here, timeoutMs);
}

async function runAfterAll(suite: Suite, here: string[], timeoutMs: number): Promise<void> {
  for (const hook of suite.afterAll) {
    const error = await attempt(hook, timeoutMs, `afterAll in ${here.join(" > ")}`);
    if (error) {
      tally.failed++;
      console.log(`✗ ${here.join(" > ")}: afterAll failed\n${describeError(error)}`);
    }
  }
}

async function runTest(testCase: TestCase, path: string[], hooks: { before: Suite[]; after: Suite[] }, timeoutMs: number): Promise<void> {
  const name = [...path, testCase.name].join(" > ");
  if (testCase.skip) {
    tally.skipped++;
    console.log(`- ${name} (skipped)`);
    return;
  }
  const limit = testCase.timeoutMs ?? timeoutMs;
  let error: unknown = null;
  for (const suite of hooks.before) for (const hook of suite.beforeEach) error ??= await attempt(hook, limit, "beforeEach");
  if (!error) error = await attempt(testCase.fn, limit, "the test");
  for (const suite of hooks.after) for (const hook of suite.afterEach) error ??= await attempt(hook, limit, "afterEach");
  if (error) {
    tally.failed++;
    console.log(`✗ ${name}\n${describeError(error)}`);
  } else {
    tally.passed++;
    console.log(`✓ ${name}`);
  }
}

async function main(args: string[]): Promise<number> {
  let timeoutMs = 60_000;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--timeout") timeoutMs = Number(args[++i]);
    else files.push(arg);
  }
  if (files.length === 0 || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    console.error("usage: run.ts [--timeout MS] <test file>...");
    return 2;
  }
  for (const file of files) {
    const suite = newSuite(file);
    collectInto(suite);
    try {
      await import(pathToFileURL(resolve(file)).href);
    } catch (error) {
      // a file that does not load fails, as in bun test, rather than vanishing from the count
      tally.failed++;
      console.log(`✗ ${file}: could not be loaded\n${describeError(error)}`);
      continue;
    }
    await runSuite(suite, [], { before: [], after: [] }, timeoutMs, false);
  }
  console.log(`${runtime}: ${tally.passed} passed, ${tally.failed} failed, ${tally.skipped} skipped`);
  return tally.failed > 0 ? 1 : 0;
}

// exit explicitly: servers or timers a test leaves behind must not keep the run alive
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
