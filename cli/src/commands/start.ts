/**
 * `kiln start <project> [--instance-type server_and_scheduler|scheduler|web_server]`: runs the
 * scheduler, the HTTP server, or both, until SIGTERM or SIGINT; then stops claiming work, gives
 * running runs a grace period, and exits. The project is reloaded from disk every few seconds so
 * edits to triggers.yaml take effect without a restart.
 */
import { hostname } from "node:os";
import { RunEngine } from "@kiln/core/engine";
import { type Project } from "@kiln/core/project";
import { smtpMailSender, startCheckpointer } from "@kiln/node";
import { RedisLeases, Scheduler, consoleLog, notifyRunEnd } from "@kiln/scheduler";
import { parseCommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE } from "../usage.ts";
import { loadUserProject, openProject } from "../project.ts";
import { serveApi } from "../serve.ts";
import { sealPlaintextTokens } from "../project-key.ts";
import { triggerFileWriter } from "../trigger-files.ts";
import { messageOf } from "@kiln/core";

export const usage = COMMAND_USAGE["start"]!;

const INSTANCE_TYPES = ["scheduler", "web_server", "server_and_scheduler"];

function positiveNumber(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${flag}: expected a positive number, got ${JSON.stringify(text)}`);
  return value;
}

/** A short stable name for the database, so projects sharing one Redis keep their leases apart. */
function namespaceOf(databaseUrl: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < databaseUrl.length; i++) hash = Math.imul(hash ^ databaseUrl.charCodeAt(i), 0x01000193) >>> 0;
  return hash.toString(16);
}

export async function start(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("start", args, {
    "instance-type": { type: "string" },
    "tick-interval": { type: "string" },
    "grace-period": { type: "string" },
    "orphan-after": { type: "string" },
    "reload-interval": { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
    "no-auth": { type: "boolean" },
  });
  const [projectPath, ...extra] = positionals;
  if (!projectPath || extra.length > 0) throw new UsageError(`usage: ${usage}`);
  const instanceType = values["instance-type"] ?? process.env.INSTANCE_TYPE ?? "scheduler";
  if (!INSTANCE_TYPES.includes(instanceType)) {
    throw new UsageError(`--instance-type: expected one of ${INSTANCE_TYPES.join(", ")}, got ${instanceType}`);
  }
  const withScheduler = instanceType !== "web_server";
  const withServer = instanceType !== "scheduler";
  const port = positiveNumber("--port", values.port ?? process.env.PORT, 6789);
  if (!Number.isInteger(port) || port > 65_535) throw new UsageError(`--port: expected a port number, got ${values.port ?? process.env.PORT}`);
  const authDisabled = values["no-auth"] === true || process.env.KILN_AUTH === "off";
  const tickMs = positiveNumber("--tick-interval", values["tick-interval"], 1000);
  const graceMs = positiveNumber("--grace-period", values["grace-period"], 30) * 1000;
  const orphanAfterMs = positiveNumber("--orphan-after", values["orphan-after"], 30) * 1000;
  const reloadMs = positiveNumber("--reload-interval", values["reload-interval"], 5) * 1000;

  let project = await loadUserProject(projectPath);
  const open = await openProject(project);
  // a long-lived process: WAL checkpoints move to a worker, off every commit's path
  const stopCheckpointer = open.databaseUrl.startsWith("file:") ? await startCheckpointer(open.store.client, open.databaseUrl.slice("file:".length)) : null;
  const engine = new RunEngine({
    store: open.store,
    project,
    executors: open.executors,
    outputs: open.runtime.outputs,
    logs: open.runtime.logs,
    beforeRunEnds: notifyRunEnd(open.store, () => project),
    addons: open.addons,
  });
  // in-process blocks store no output while this process may have been presumed dead (see RunEngine.setLiveness)
  open.runtime.fence = () => engine.fenced();
  let scheduler: Scheduler | null = null;
  // bumped by each API write-back, so a reload that read the file before it is dropped
  let written = 0;
  const useProject = (next: Project) => {
    project = next;
    // the block runtime too: in-process blocks of a pipeline added since the start find it at once
    open.runtime.project = next;
    engine.setProject(next);
    scheduler?.setProject(next);
  };
  if (withScheduler) {
    const id = `scheduler-${crypto.randomUUID()}`;
    // with REDIS_URL, replicas split the triggers between them; without, this one evaluates all
    const redisUrl = process.env.REDIS_URL;
    const leases = redisUrl
      ? new RedisLeases({ redisUrl, store: open.store, replicaId: id, namespace: `kiln:${namespaceOf(open.databaseUrl)}`, log: consoleLog })
      : null;
    scheduler = new Scheduler({
      id,
      leases,
      store: open.store,
      project,
      engine,
      host: hostname(),
      pid: process.pid,
      tickIntervalMs: tickMs,
      orphanAfterMs,
      log: consoleLog,
      sendMail: smtpMailSender,
      // before a sync would change a code trigger, the files as they are now: a separate web
      // server may have written an API edit to triggers.yaml since the last reload
      reloadProject: async () => {
        const before = written;
        const next = await loadUserProject(projectPath);
        if (written === before) useProject(next);
        return project;
      },
    });
  }
  const running = scheduler;
  const server = withServer
    ? await serveApi({
        open,
        project: () => project,
        // an API edit of a trigger in triggers.yaml is written there; this process's sync sees it at once
        triggerFiles: triggerFileWriter(projectPath, project.root, (next) => {
          written++;
          useProject(next);
        }),
        port,
        host: values.host ?? process.env.HOST ?? "0.0.0.0",
        authDisabled,
        // a co-located scheduler starts API-created runs at once (it listens to the store); a web_server alone leaves them to the schedulers
        ...(running ? { engine } : {}),
      })
    : null;
  // the server seals plaintext tokens before it listens; a scheduler alone does it here
  if (!withServer) await sealPlaintextTokens(open.store, consoleLog);
  // started after the server's checks, so a refused start has run nothing
  if (scheduler) {
    consoleLog.info(`${scheduler.id} started for ${project.root} (pid ${process.pid}, database ${open.databaseUrl.replace(/\/\/[^@]*@/, "//***@")})`);
    scheduler.start();
  }

  // triggers.yaml and metadata.yaml edits take effect without a restart; a broken edit keeps the last good project
  const reload = setInterval(() => {
    const before = written;
    loadUserProject(projectPath).then(
      (next) => {
        if (written === before) useProject(next);
      },
      (error: unknown) => consoleLog.warn(`project not reloaded: ${messageOf(error)}`),
    );
  }, reloadMs);

  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  clearInterval(reload);
  consoleLog.info("stopping: no new runs will be claimed");
  server?.stop();
  await scheduler?.stop(graceMs);
  await stopCheckpointer?.();
  open.close();
  return 0;
}
