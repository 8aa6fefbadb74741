/**
 * The run engine across a database outage (a real sqld killed and started again on its data):
 * a block run that ends while the database cannot be reached is recorded once it is back, and
 * the run completes. It is never failed with ECONNREFUSED, nor left running with nobody on it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { ExecutorRegistry } from "@kiln/core";
import { RunEngine } from "@kiln/core/engine";
import { Store, type SqlClient } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { freePort } from "../helpers/ports.ts";
import { localExecutor } from "@kiln/executor-local";
import { CLI_MAIN, projectFixture, until, type Fixture } from "../helpers/fixtures.ts";
import { startLibsqlServer, type LibsqlServer } from "../helpers/libsql-server.ts";

let sqld: LibsqlServer | null = null;
let fx: Fixture | null = null;

afterAll(() => {
  sqld?.stop();
  fx?.cleanup();
});

/** An in-process block that marks its start, waits for its gate file, marks its return. */
function gatedBlock(root: string): string {
  const at = (name: string) => JSON.stringify(join(root, name));
  return `import { existsSync, writeFileSync } from "node:fs";
export default async function work(ctx) {
  writeFileSync(${at("started")}, "");
  while (!existsSync(${at("gate")})) await new Promise((r) => setTimeout(r, 20));
  writeFileSync(${at("returned")}, "");
  return { attempt: ctx.attempt };
}
`;
}

describe("a database outage while a run executes", () => {
  test(
    "the block run's end is written once the database answers again, and the run completes",
    async () => {
      fx = await projectFixture({
        "kiln.yaml": "executor_config:\n  in_process: true\n",
        "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n  - uuid: after\n    type: custom\n    upstream_blocks: [work]\n",
        "custom/work.js": "export default () => null;\n",
        "custom/after.js": "export default () => 'after';\n",
      });
      writeFileSync(join(fx.root, "custom/work.js"), gatedBlock(fx.root));
      sqld = await startLibsqlServer();
      const store = await Store.open(createClient({ url: sqld.url }));
      const runtime = { ...fx.runtime, store };
      const executors = new ExecutorRegistry().register(localExecutor({ runtime, command: [process.execPath, CLI_MAIN], env: { KILN_DATABASE_URL: sqld.url } }));
      const engine = new RunEngine({ store, project: fx.project, executors, outputs: runtime.outputs, pollIntervalMs: 50 });

      const run = (await store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
      const done = engine.execute(run.id);
      await until(() => existsSync(join(fx!.root, "started")), "the block to start", 30_000);

      // the database goes away; the block returns meanwhile, so its end must be written while none answers
      await sqld.kill();
      writeFileSync(join(fx.root, "gate"), "");
      await until(() => existsSync(join(fx!.root, "returned")), "the block to return", 30_000);
      // a few of the engine's tries fail (connection refused) before the database is back
      await new Promise((r) => setTimeout(r, 1_500));
      await sqld.start();

      const final = await done;
      expect(final.status).toBe("completed");
      expect(final.metrics.error).toBeUndefined();
      const rs = await store.client.execute({ sql: "SELECT status FROM pipeline_runs WHERE id = ?", args: [run.id] });
      expect(String(rs.rows[0]?.status)).toBe("completed");
      const blocks = await store.getBlockRuns(run.id);
      expect(blocks.map((b) => [b.blockUuid, b.status, b.attempt, b.error])).toEqual([
        ["work", "completed", 1, null],
        ["after", "completed", 1, null],
      ]);
    },
    90_000,
  );

  test(
    "a run let go while the database is down keeps its block process for the owner that resumes it (the stored block runs are read once it answers)",
    async () => {
      const f = await projectFixture({
        "kiln.yaml": "executor_type: local\n",
        "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n",
        "custom/work.js": "export default () => null;\n",
      });
      const db = await startLibsqlServer();
      try {
        writeFileSync(join(f.root, "custom/work.js"), gatedBlock(f.root));
        const store = await Store.open(createClient({ url: db.url }));
        const runtime = { ...f.runtime, store };
        const executors = () => new ExecutorRegistry().register(localExecutor({ runtime, command: [process.execPath, CLI_MAIN], env: { KILN_DATABASE_URL: db.url } }));
        const first = new RunEngine({ store, project: f.project, executors: executors(), outputs: runtime.outputs, pollIntervalMs: 50 });
        let presumedDead: string | null = null;
        first.setLiveness(() => presumedDead);
        const run = (await store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
        const firstDone = first.execute(run.id, { owner: "replica-a" });
        await until(() => existsSync(join(f.root, "started")), "the block process to start", 30_000);
        await until(async () => (await store.getBlockRuns(run.id))[0]?.executorHandle != null, "the block process's handle to be stored", 30_000);

        // the database goes away and the engine learns it may have been presumed dead: it lets the
        // run go while nothing answers, and decides which processes to leave once it can read
        await db.kill();
        presumedDead = "the heartbeat lapsed (test)";
        expect(first.checkLiveness()).toBe(true);
        await new Promise((r) => setTimeout(r, 1_500));
        await db.start();
        await firstDone;

        // the same scheduler resumes the run: the block process it left is the one it follows
        const second = new RunEngine({ store, project: f.project, executors: executors(), outputs: runtime.outputs, pollIntervalMs: 50 });
        const secondDone = second.resume(run.id, "replica-a", { owner: "replica-a-again" });
        await new Promise((r) => setTimeout(r, 300));
        writeFileSync(join(f.root, "gate"), "");
        const final = await secondDone;
        expect(final.metrics.error).toBeUndefined();
        expect(final.status).toBe("completed");
        const blocks = await store.getBlockRuns(run.id);
        // attempt 1 ran to its end, once: it was never stopped and run again
        expect(blocks.map((b) => [b.blockUuid, b.status, b.attempt, b.error])).toEqual([["work", "completed", 1, null]]);
        expect(existsSync(join(f.root, "returned"))).toBe(true);
      } finally {
        db.stop();
        f.cleanup();
      }
    },
    90_000,
  );

  test(
    "a block process's handle is stored though the database refused the connection when it started (the next owner can re-attach)",
    async () => {
      const f = await projectFixture({
        "kiln.yaml": "executor_type: local\n",
        "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n",
        "custom/work.js": "export default () => null;\n",
      });
      try {
        writeFileSync(join(f.root, "custom/work.js"), gatedBlock(f.root));
        // the error a libSQL client really gives when nobody answers, thrown for the first writes of the handle
        const refused = await createClient({ url: `http://127.0.0.1:${await freePort()}` }).execute("SELECT 1").catch((e: unknown) => e);
        let refusals = 3;
        const url = `file:${join(f.root, ".kiln/kiln.db")}`;
        const opened = await openDatabase(url);
        const touchesHandle = (stmts: unknown[]) => stmts.some((st) => /executor_handle\s*=/.test(typeof st === "string" ? st : String((st as { sql?: string }).sql)));
        const client: SqlClient = {
          execute: opened.execute.bind(opened),
          batch: ((stmts: Parameters<SqlClient["batch"]>[0], mode?: Parameters<SqlClient["batch"]>[1]) => {
            if (refusals > 0 && touchesHandle(stmts)) {
              refusals--;
              return Promise.reject(refused);
            }
            return opened.batch(stmts, mode);
          }) as SqlClient["batch"],
          close: () => opened.close(),
        };
        const store = await Store.open(client);
        const runtime = { ...f.runtime, store };
        const executors = new ExecutorRegistry().register(localExecutor({ runtime, command: [process.execPath, CLI_MAIN], env: { KILN_DATABASE_URL: url } }));
        const engine = new RunEngine({ store, project: f.project, executors, outputs: runtime.outputs, pollIntervalMs: 50 });
        const run = (await store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
        const done = engine.execute(run.id);
        await until(async () => (await store.getBlockRuns(run.id))[0]?.executorHandle != null, "the block process's handle to be stored", 30_000);
        expect(refusals).toBe(0);
        expect(Number((await store.getBlockRuns(run.id))[0]!.executorHandle!.pid)).toBeGreaterThan(0);
        writeFileSync(join(f.root, "gate"), "");
        expect((await done).status).toBe("completed");
        opened.close();
      } finally {
        f.cleanup();
      }
    },
    90_000,
  );
});
