/**
 * `bun:test` for Deno and Node: the part of its API kiln's tests use (describe, test, hooks,
 * expect), so the same test files run unchanged on every runtime. The Deno import map and the
 * Node resolve hook point the `bun:test` specifier here; run.ts imports the files, then runs
 * what they registered. `expect` is Jest's (the npm package), with Bun's few extra matchers.
 */
import { expect as jestExpect, type MatcherContext } from "expect";

type Body = () => unknown;
type Hook = () => unknown;

/** A registered test: where it sits, its body, and whether it is skipped. */
export interface TestCase {
  name: string;
  fn: Body;
  skip: boolean;
  timeoutMs: number | undefined;
}

/** A describe block (a file's top level is one too). */
export interface Suite {
  name: string;
  skip: boolean;
  children: Array<Suite | TestCase>;
  beforeAll: Hook[];
  afterAll: Hook[];
  beforeEach: Hook[];
  afterEach: Hook[];
}

/** A fresh top-level suite for one file. */
export function newSuite(name: string, skip = false): Suite {
  return { name, skip, children: [], beforeAll: [], afterAll: [], beforeEach: [], afterEach: [] };
}

let current: Suite = newSuite("(no file)");

/** Makes `suite` the one that describe/test calls register into (run.ts sets one per file). */
export function collectInto(suite: Suite): void {
  current = suite;
}

function register(name: string, body: () => void, skip: boolean): void {
  const suite = newSuite(name, skip);
  current.children.push(suite);
  const parent = current;
  current = suite;
  try {
    body();
  } finally {
    current = parent;
  }
}

interface Describe {
  (name: string, body: () => void): void;
  skip(name: string, body: () => void): void;
  skipIf(condition: unknown): (name: string, body: () => void) => void;
  if(condition: unknown): (name: string, body: () => void) => void;
}

export const describe: Describe = Object.assign((name: string, body: () => void) => register(name, body, false), {
  skip: (name: string, body: () => void) => register(name, body, true),
  skipIf: (condition: unknown) => (name: string, body: () => void) => register(name, body, Boolean(condition)),
  if: (condition: unknown) => (name: string, body: () => void) => register(name, body, !condition),
});

type TestOptions = number | { timeout?: number };

function addTest(name: string, fn: Body, options: TestOptions | undefined, skip: boolean): void {
  const timeoutMs = typeof options === "number" ? options : options?.timeout;
  current.children.push({ name, fn, skip, timeoutMs });
}

/** Bun's test.each name formatting: %s %d %i %p %j %o and %# (the row index). */
function formatName(template: string, args: unknown[], index: number): string {
  let i = 0;
  return template.replace(/%[sdipjo#%]/g, (token) => {
    if (token === "%%") return "%";
    if (token === "%#") return String(index);
    const value = args[i++];
    if (token === "%s") return String(value);
    if (token === "%d" || token === "%i") return String(Number(value));
    return JSON.stringify(value);
  });
}

interface TestFn {
  (name: string, fn: Body, options?: TestOptions): void;
  skip(name: string, fn: Body, options?: TestOptions): void;
  todo(name: string, fn?: Body): void;
  skipIf(condition: unknown): (name: string, fn: Body, options?: TestOptions) => void;
  if(condition: unknown): (name: string, fn: Body, options?: TestOptions) => void;
  each<T>(rows: readonly T[]): (name: string, fn: (...args: never[]) => unknown, options?: TestOptions) => void;
}

export const test: TestFn = Object.assign((name: string, fn: Body, options?: TestOptions) => addTest(name, fn, options, false), {
  skip: (name: string, fn: Body, options?: TestOptions) => addTest(name, fn, options, true),
  todo: (name: string) => addTest(name, () => {}, undefined, true),
  skipIf: (condition: unknown) => (name: string, fn: Body, options?: TestOptions) => addTest(name, fn, options, Boolean(condition)),
  if: (condition: unknown) => (name: string, fn: Body, options?: TestOptions) => addTest(name, fn, options, !condition),
  each:
    <T>(rows: readonly T[]) =>
    (name: string, fn: (...args: never[]) => unknown, options?: TestOptions) => {
      rows.forEach((row, index) => {
        // as in Bun: an array row is spread into the arguments, anything else is the one argument
        const args = (Array.isArray(row) ? row : [row]) as never[];
        addTest(formatName(name, args, index), () => fn(...args), options, false);
      });
    },
});

export const it = test;

export function beforeAll(fn: Hook): void {
  current.beforeAll.push(fn);
}
export function afterAll(fn: Hook): void {
  current.afterAll.push(fn);
}
export function beforeEach(fn: Hook): void {
  current.beforeEach.push(fn);
}
export function afterEach(fn: Hook): void {
  current.afterEach.push(fn);
}

/** Bun's matchers that Jest's expect lacks. */
jestExpect.extend({
  toStartWith(this: MatcherContext, received: unknown, prefix: string) {
    const pass = typeof received === "string" && received.startsWith(prefix);
    return { pass, message: () => `expected ${JSON.stringify(received)}${this.isNot ? " not" : ""} to start with ${JSON.stringify(prefix)}` };
  },
  toEndWith(this: MatcherContext, received: unknown, suffix: string) {
    const pass = typeof received === "string" && received.endsWith(suffix);
    return { pass, message: () => `expected ${JSON.stringify(received)}${this.isNot ? " not" : ""} to end with ${JSON.stringify(suffix)}` };
  },
  toBeNumber(this: MatcherContext, received: unknown) {
    const pass = typeof received === "number" && !Number.isNaN(received);
    return { pass, message: () => `expected ${String(received)}${this.isNot ? " not" : ""} to be a number` };
  },
  toBeTrue(this: MatcherContext, received: unknown) {
    return { pass: received === true, message: () => `expected ${String(received)}${this.isNot ? " not" : ""} to be true` };
  },
  toBeFalse(this: MatcherContext, received: unknown) {
    return { pass: received === false, message: () => `expected ${String(received)}${this.isNot ? " not" : ""} to be false` };
  },
});

export const expect = jestExpect;
