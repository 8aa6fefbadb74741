/**
 * An executor inside Cloudflare's workerd, for the executors that claim to run there: a Worker
 * bundled by `wrangler deploy --dry-run` (no nodejs_compat flag: fetch and WebCrypto only),
 * run in Miniflare, that builds a fresh executor for every request from the Worker's bindings
 * and performs one operation on a job or a stored handle, as a Worker invocation would.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import type { BlockJob, ExecutionStatus, JsonObject } from "@kiln/core";
import { REPO_ROOT } from "./fixtures.ts";

export interface ExecutorWorker {
  /** One operation (start, status, cancel, logs) in a fresh invocation; a non-200 answer throws with the Worker's error. */
  call(op: "start" | "status" | "cancel" | "logs", body: JsonObject): Promise<unknown>;
  /** Polls status until the work ends or `limitMs` passes; the last status either way. */
  settle(handle: JsonObject, limitMs?: number): Promise<ExecutionStatus>;
  dispose(): Promise<void>;
}

export interface ExecutorWorkerOptions {
  /** Names the temp folder and the Worker. */
  name: string;
  /** The executor package's entry, relative to the repository. */
  module: string;
  /** What to import from it as `factory`, e.g. `{ ecsExecutor as factory }` or `factory` (the default export). */
  importClause: string;
  /** The Worker's bindings: the credentials the executor reads from its context's env. */
  bindings: Record<string, string>;
}

/** Bundles and starts the Worker; dispose() it in teardown. */
export async function startExecutorWorker(options: ExecutorWorkerOptions): Promise<ExecutorWorker> {
  const dir = mkdtempSync(join(tmpdir(), `kiln-${options.name}-worker-`));
  const source = `
import ${options.importClause} from ${JSON.stringify(join(REPO_ROOT, options.module))};
export default {
  async fetch(request, env) {
    const { op, job, handle } = await request.json();
    const executor = await factory({ projectRoot: "/app", blockEnv: { KILN_DATABASE_URL: "libsql://kiln.example" }, env, logs: { append() {} } });
    try {
      if (op === "start") return Response.json(await executor.start(job));
      if (op === "status") return Response.json(await executor.status(handle));
      if (op === "cancel") { await executor.cancel(handle); return Response.json({}); }
      const lines = [];
      for await (const line of executor.logs(handle)) lines.push(line);
      return Response.json(lines);
    } catch (error) {
      return Response.json({ error: String(error && error.message) }, { status: 500 });
    }
  },
};
`;
  writeFileSync(join(dir, "worker.js"), source);
  writeFileSync(join(dir, "wrangler.toml"), `name = "kiln-${options.name}-check"\nmain = "worker.js"\ncompatibility_date = "2025-01-01"\n`);
  const built = spawnSync(join(REPO_ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", "dist"], {
    cwd: dir,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (built.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`wrangler could not bundle the Worker:\n${built.stdout}${built.stderr}`);
  }
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "dist/worker.js"),
    // module names are paths under this root (the default, the working directory, is elsewhere)
    modulesRoot: join(dir, "dist"),
    compatibilityDate: "2025-01-01",
    bindings: options.bindings,
  });

  async function call(op: string, body: JsonObject): Promise<unknown> {
    const response = await mf.dispatchFetch("http://worker/", { method: "POST", body: JSON.stringify({ op, ...body }) });
    const result = (await response.json()) as unknown;
    if (response.status !== 200) throw new Error(`the Worker answered ${response.status}: ${JSON.stringify(result)}`);
    return result;
  }

  return {
    call,
    async settle(handle, limitMs = 20_000) {
      const deadline = Date.now() + limitMs;
      for (;;) {
        const status = (await call("status", { handle })) as ExecutionStatus;
        if (status.state !== "running" || Date.now() > deadline) return status;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async dispose() {
      await mf.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A block run's job for an executor in the Worker: only the executor and its config vary. */
export function workerJob(executorType: string, executorConfig: JsonObject, blockRunId: number): BlockJob {
  return {
    projectRoot: "/app",
    pipelineUuid: "edge",
    blockUuid: "task",
    blockRunId,
    pipelineRunId: 1,
    attempt: 1,
    executionDate: new Date(0).toISOString(),
    executionPartition: "1/19700101T000000",
    variables: {},
    event: null,
    inputs: [],
    executorType,
    executorConfig,
    timeout: null,
  };
}
