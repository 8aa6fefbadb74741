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
 * A `.py` module runs through kiln's Python runner (runtime.python) as Mage runs it: a
 * conditional's @condition functions get the parent's upstream outputs and Mage's kwargs
 * (with parent_block_uuid); a callback's @on_success/@on_failure functions get the kwargs (with
 * `__error` on failure), its @callback('success'|'failure') functions also the parent's output.
 */
import { triggerPipeline, TriggerPipelineError } from "./api/trigger-pipeline.ts";
import type { BlockContext } from "./blocks.ts";
import type { BlockRuntime } from "./block-runtime.ts";
import { parseBlockRunUuid } from "./domain.ts";
import type { AddonCall, AddonRunner } from "./engine/addons.ts";
import { createBlockLogger } from "./logs.ts";
import { pythonKwargs, runPythonFile } from "./python-blocks.ts";

/** The context an add-on function gets: its parent block run's, and which add-on it is. */
export interface AddonContext extends BlockContext {
  parentBlockUuid: string;
  addonUuid: string;
}

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

/** An AddonRunner over a block runtime (its Python host runs `.py` modules). */
export function moduleAddonRunner(runtime: BlockRuntime): AddonRunner {
  const contextOf = (call: AddonCall): AddonContext => {
    const job = call.job;
    const logger = createBlockLogger(runtime.logs, () => runtime.clock.now(), {
      pipelineUuid: job.pipelineUuid,
      partition: job.executionPartition,
      blockUuid: job.blockUuid,
    });
    const signal = new AbortController().signal;
    return {
      executionDate: new Date(job.executionDate),
      executionPartition: job.executionPartition,
      pipelineUuid: job.pipelineUuid,
      pipelineRunId: job.pipelineRunId,
      blockUuid: job.blockUuid,
      blockRunId: job.blockRunId,
      dynamicBlockIndex: parseBlockRunUuid(job.blockUuid).index,
      attempt: job.attempt,
      variables: Object.freeze({ ...job.variables }),
      event: job.event,
      secrets: runtime.secrets,
      logger,
      signal,
      parentBlockUuid: call.parent.uuid,
      addonUuid: call.addon.uuid,
      triggerPipeline(pipelineUuid, options = {}) {
        const store = runtime.store;
        if (!store) return Promise.reject(new TriggerPipelineError("ctx.triggerPipeline: this runtime has no database"));
        return triggerPipeline({ store, project: runtime.project }, pipelineUuid, { signal, log: (m) => logger.info(m), ...options });
      },
    };
  };

  const inputsOf = (call: AddonCall) =>
    Promise.all(
      call.job.inputs.map(async (ref) => {
        const value = await runtime.outputs.read(call.job.pipelineUuid, ref.partition, ref.blockUuid);
        return "item" in ref && Array.isArray(value) ? value[ref.item] : value;
      }),
    );
  const parentOutput = (call: AddonCall) => runtime.outputs.read(call.job.pipelineUuid, call.job.executionPartition, call.job.blockUuid);

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
      const result = await fn!(...(await inputsOf(call)), contextOf(call));
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
        await fn(await parentOutput(call), ctx);
      } else {
        await fn({ message: call.error ?? "" }, ctx);
      }
    },
  };

  async function runPython(call: AddonCall): Promise<boolean | undefined> {
    const condition = call.kind === "condition";
    const failure = call.callback === "on_failure";
    const kwargs = {
      ...(await pythonKwargs(call.job, runtime)),
      parent_block_uuid: call.parent.uuid,
      retry: { attempts: call.job.attempt },
      ...(failure ? { __error: call.error ?? "" } : {}),
    };
    const inputs = condition ? await inputsOf(call) : failure ? [] : [await parentOutput(call)];
    const outcome = await runPythonFile({
      job: call.job,
      runtime,
      context: contextOf(call),
      modulePath: call.addon.modulePath,
      mode: condition ? "condition" : "callback",
      blockType: condition ? "conditional" : "callback",
      inputs,
      kwargs,
      ...(condition ? {} : { callbackStatus: failure ? ("failure" as const) : ("success" as const) }),
    });
    return outcome.condition;
  }
}
