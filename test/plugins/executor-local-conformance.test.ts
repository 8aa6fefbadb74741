/** The local executor passes the executor conformance suite, in a child process and in process. */
import { afterAll, describe, test } from "bun:test";
import { type BlockRuntime } from "@kiln/core";
import { runExecutorConformance } from "@kiln/core/conformance";
import { localExecutor } from "@kiln/executor-local";
import { fileLogSink, fileOutputStore, folderSource } from "@kiln/node";
import { conformanceProject } from "../helpers/conformance.ts";
import { CLI_MAIN } from "../helpers/fixtures.ts";

const fixture = await conformanceProject({ executorType: "local" });
afterAll(() => fixture.close());

const runtime: BlockRuntime = {
  project: fixture.project,
  source: folderSource(fixture.root),
  outputs: fileOutputStore(fixture.root),
  logs: fileLogSink(fixture.root),
  secrets: { get: async (name) => `secret:${name}` },
  clock: fixture.store.clock,
  store: fixture.store,
};

/** Whether a pid's process is gone (or a zombie waiting to be reaped). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

describe("executor-local (a process per block run)", () => {
  runExecutorConformance(
    () => localExecutor({ runtime, command: [process.execPath, CLI_MAIN], env: { KILN_DATABASE_URL: fixture.databaseUrl }, killGraceMs: 1_000 }),
    {
      ...fixture.harness,
      stopped: async (handle) => typeof handle.pid !== "number" || gone(handle.pid),
      invalidConfig: { config: { in_process: "yes" }, field: "in_process" },
      settleMs: 30_000,
    },
    test,
  );
});
