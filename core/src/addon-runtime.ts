/**
 * Runs callback and conditional modules for the engine (see engine/addons.ts), in the engine's
 * process: they are short functions of their parent block's data, as in Mage, where they run in
 * the parent block's process.
 *
 * A TypeScript/JavaScript **conditional** (`conditionals/<uuid>.ts`) default-exports (or exports
 * as `condition`) a function called like its parent block: the parent's upstream outputs in
 * upstream_blocks order, then the context; it returns (or resolves to) a boolean.
 *
 * A TypeScript/JavaScript **callback** (`callbacks/<uuid>.ts`) exports `onSuccess` and/or
 * `onFailure` (named exports, or properties of its default export). `onSuccess(output, ctx)`
 * gets the parent block run's output; `onFailure(error, ctx)` gets `{ message }` of its error.
 * `ctx` is a block context whose `blockUuid` is the parent's, plus `parentBlockUuid` and
 * `addonUuid`.
 *
 * A `.py` module goes to the Python runner given as `python` (pythonAddonRunner: Mage's
 * @condition, @on_success, @on_failure and @callback decorators); without one it fails, saying so.
 */
import type { BlockContext } from "./blocks.ts";
import { blockContextOf, readBlockInputs, type BlockRuntime } from "./block-runtime.ts";
import type { AddonCall, AddonRunner } from "./engine/addons.ts";

/** The context an add-on function gets: its parent block run's, and which add-on it is. */
export interface AddonContext extends BlockContext {
  parentBlockUuid: string;
  addonUuid: string;
}

/** Runs a Python add-on (the Python runner's entry); resolves to a conditional's verdict. */
export type PythonAddonRunner = (call: AddonCall, runtime: BlockRuntime) => Promise<unknown>;

type Fn = (...args: unknown[]) => unknown;

function exported(moduleExports: unknown, names: string[]): Fn | null {
  if (moduleExports === null || typeof moduleExports !== "object") return null;
  const mod = moduleExports as Record<string, unknown>;
  for (const name of names) if (typeof mod[name] === "function") return mod[name] as Fn;
  const def = mod.default;
  if (names.includes("default") && typeof def === "function") return def as Fn;
  if (def !== null && typeof def === "object") {
    for (const name of names) {
      const value = (def as Record<string, unknown>)[name];
      if (typeof value === "function") return value as Fn;
    }
  }
  return null;
}

/** An AddonRunner over a block runtime; `python` runs `.py` modules. */
export function moduleAddonRunner(runtime: BlockRuntime, python?: PythonAddonRunner): AddonRunner {
  // an add-on gets its parent's job variables as merged, without the block's runtime variables
  const contextOf = (call: AddonCall): AddonContext => ({
    ...blockContextOf(call.job, runtime, { ...call.job.variables }, new AbortController().signal),
    parentBlockUuid: call.parent.uuid,
    addonUuid: call.addon.uuid,
  });

  const load = async (call: AddonCall, names: string[], what: string): Promise<Fn | null> => {
    const fn = exported(await runtime.source.importModule(call.addon.modulePath), names);
    if (!fn && call.kind === "condition") {
      throw new Error(`${call.addon.modulePath}: expected ${what}`);
    }
    return fn;
  };

  return {
    async condition(call) {
      if (call.addon.modulePath.endsWith(".py")) return Boolean(await runPython(call));
      const fn = await load(call, ["condition", "default"], "a default-exported function (or an export named condition) returning a boolean");
      const inputs = await readBlockInputs(runtime, call.job);
      const result = await fn!(...inputs, contextOf(call));
      if (typeof result !== "boolean") throw new Error(`${call.addon.modulePath}: returned ${result === null ? "null" : typeof result}, expected true or false`);
      return result;
    },

    async callback(call) {
      if (call.addon.modulePath.endsWith(".py")) {
        await runPython(call);
        return;
      }
      const success = call.callback === "on_success";
      const fn = await load(call, [success ? "onSuccess" : "onFailure"], "");
      if (!fn) {
        const other = exported(await runtime.source.importModule(call.addon.modulePath), [success ? "onFailure" : "onSuccess"]);
        if (other) return; // this callback only handles the other outcome
        throw new Error(`${call.addon.modulePath}: expected an export named onSuccess or onFailure (or a default export with them)`);
      }
      const ctx = contextOf(call);
      if (success) {
        const output = await runtime.outputs.read(call.job.pipelineUuid, call.job.executionPartition, call.job.blockUuid);
        await fn(output, ctx);
      } else {
        await fn({ message: call.error ?? "" }, ctx);
      }
    },
  };

  function runPython(call: AddonCall): Promise<unknown> {
    if (!python) {
      return Promise.reject(new Error(`${call.addon.modulePath}: Python ${call.kind === "condition" ? "conditionals" : "callbacks"} need kiln's Python runner, which this kiln process does not have`));
    }
    return python(call, runtime);
  }
}
