/**
 * kiln-executor-nice: an example third-party executor. Each block run is `kiln run-block` in a
 * background shell under `nice`, its output and exit code written to files beside the project,
 * so the handle (a folder and a pid) is all any kiln process needs to poll, read the log, or
 * cancel it, including one started after a restart.
 *
 * kiln.yaml:
 *   plugins: [kiln-executor-nice]
 *   executor_type: nice
 *   executors:
 *     nice: { niceness: 10 }
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blockRunEnv, runBlockArgs, type BlockJob, type ExecutionHandle, type ExecutionStatus, type Executor, type ExecutorContext, type JsonObject } from "@kiln/core";

/** The shell line that runs the block and records how it ended; $1 is the run folder, the rest the command. */
const WRAPPER = 'dir="$1"; shift; "$@" > "$dir/output.log" 2>&1; echo $? > "$dir/exit_code.tmp"; mv "$dir/exit_code.tmp" "$dir/exit_code"';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

function stringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every((part) => typeof part === "string" && part.length > 0);
}

/** The executor factory kiln imports from this package. */
export default function niceExecutor(context: ExecutorContext): Executor {
  return {
    type: "nice",

    validateConfig(config: JsonObject): string | null {
      const niceness = config.niceness;
      if (niceness !== undefined && (typeof niceness !== "number" || !Number.isInteger(niceness) || niceness < 0 || niceness > 19)) {
        return "executor_config.niceness: expected an integer from 0 to 19";
      }
      if (config.command !== undefined && !stringList(config.command)) return "executor_config.command: expected a list of strings, e.g. [kiln]";
      return null;
    },

    async start(job: BlockJob): Promise<ExecutionHandle> {
      const dir = join(job.projectRoot, ".kiln", "nice", `${job.blockRunId}-${job.attempt}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const command = stringList(job.executorConfig.command) ? job.executorConfig.command : ["kiln"];
      const niceness = typeof job.executorConfig.niceness === "number" ? job.executorConfig.niceness : 10;
      const child = spawn("nice", ["-n", String(niceness), "sh", "-c", WRAPPER, "kiln-nice", dir, ...command, ...runBlockArgs(job)], {
        cwd: job.projectRoot,
        env: { ...definedOnly(context.env), ...context.blockEnv, ...blockRunEnv(job) },
        // its own process group, so cancel reaches the block and whatever it started
        detached: true,
        stdio: "ignore",
      });
      child.unref();
      if (child.pid === undefined) throw new Error("kiln-executor-nice: could not start the block process");
      return { dir, pid: child.pid };
    },

    async status(handle: ExecutionHandle): Promise<ExecutionStatus> {
      const dir = String(handle.dir);
      if (existsSync(join(dir, "cancelled"))) return { state: "cancelled" };
      if (existsSync(join(dir, "exit_code"))) {
        const code = Number(readFileSync(join(dir, "exit_code"), "utf8").trim());
        return code === 0 ? { state: "completed" } : { state: "failed", error: `kiln run-block ended with exit code ${code}` };
      }
      if (processAlive(Number(handle.pid))) return { state: "running" };
      return { state: "failed", error: "the block process ended without recording an exit code (killed, or the machine restarted)" };
    },

    async cancel(handle: ExecutionHandle): Promise<void> {
      const dir = String(handle.dir);
      // the mark goes first, so status says cancelled whatever the killed process leaves behind
      writeFileSync(join(dir, "cancelled"), "");
      try {
        process.kill(-Number(handle.pid), "SIGKILL");
      } catch {
        // already gone
      }
    },

    async *logs(handle: ExecutionHandle): AsyncIterable<string> {
      const file = join(String(handle.dir), "output.log");
      if (!existsSync(file)) return;
      for (const line of readFileSync(file, "utf8").split("\n")) if (line) yield line;
    },
  };
}
