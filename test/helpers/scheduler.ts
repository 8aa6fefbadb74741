/**
 * Scheduler test helpers: a project fixture with a Scheduler on a FakeClock, replicas (more
 * schedulers on their own database connections to the same file), gates that in-process blocks
 * wait on, and readers for the rows the scheduler writes.
 */
import { writeFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { ExecutorRegistry, type BlockRuntime, type Clock, type FakeClock, type OutputStore } from "@kiln/core";
import { RunEngine } from "@kiln/core/engine";
import { loadProject, type Project } from "@kiln/core/project";
import { Store, type SqlClient } from "@kiln/core/store";
import { fileLogSink, fileOutputStore, folderSource, openDatabase } from "@kiln/node";
import { localExecutor } from "@kiln/executor-local";
import { Scheduler, silentLog, type SchedulerOptions } from "@kiln/scheduler";
import { CLI_MAIN, fixtureSecretKey, guardRaceErrors, projectFixture, until, type Fixture } from "./fixtures.ts";

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export const IN_PROCESS = "executor_config:\n  in_process: true\n";

/** A UTC instant; month is 1-12. */
export function utc(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

export function iso(t: number | null | undefined): string | null {
  return t === null || t === undefined ? null : new Date(t).toISOString();
}

/** `YYYYMMDDTHHMMSS` of an instant, as in execution partitions. */
export function stamp(t: number): string {
  return new Date(t).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "");
}

// ---------------------------------------------------------------------------------------------
// gates: an in-process block awaits globalThis.__kilnGates[name] until the test opens it

interface Gate {
  promise: Promise<void>;
  open(): void;
  /** Blocks that reached the gate (each call of the block). */
  arrivals: number;
}

type GateMap = Record<string, Gate>;

function gates(): GateMap {
  const g = globalThis as unknown as { __kilnGates?: GateMap };
  g.__kilnGates ??= {};
  return g.__kilnGates;
}

/** A new closed gate named `name` (replacing any before it). */
export function closeGate(name: string): Gate {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  const gate: Gate = { promise, open, arrivals: 0 };
  gates()[name] = gate;
  return gate;
}

export function openGate(name: string): void {
  gates()[name]?.open();
}

/** Source of a block module that waits at gate `name` (if one is set), then returns its partition. */
export function gatedBlock(name: string): string {
  return `export default async function block(ctx) {
  const gate = globalThis.__kilnGates?.[${JSON.stringify(name)}];
  if (gate) {
    gate.arrivals++;
    await gate.promise;
  }
  return { partition: ctx.executionPartition };
}
`;
}

// ---------------------------------------------------------------------------------------------
// projects

/** pipelines/<p>/triggers.yaml from trigger objects (JSON is valid YAML). */
export function triggersYaml(triggers: Array<Record<string, unknown>>): string {
  return `triggers:\n${triggers.map((t) => `  - ${JSON.stringify(t)}`).join("\n")}\n`;
}

/** A project with one pipeline `p` of one gated in-process block `work`. */
export function gatedProject(gateName: string, triggers: Array<Record<string, unknown>>, metadataExtra = ""): Record<string, string> {
  return {
    "kiln.yaml": IN_PROCESS,
    "pipelines/p/metadata.yaml": `${metadataExtra}blocks:\n  - uuid: work\n    type: custom\n`,
    "custom/work.js": gatedBlock(gateName),
    "pipelines/p/triggers.yaml": triggersYaml(triggers),
  };
}

export interface SchedulerFixture extends Fixture {
  clock: FakeClock;
  scheduler: Scheduler;
  /** Rewrites files (null deletes one), loads the project again and hands it to the scheduler. */
  edit(files: Record<string, string | null>): Promise<Project>;
}

/** projectFixture plus a Scheduler on the fixture's store, engine and fake clock. */
export async function schedulerFixture(
  files: Record<string, string>,
  clock: FakeClock,
  options: Partial<SchedulerOptions> = {},
): Promise<SchedulerFixture> {
  const fx = await projectFixture(files, clock);
  const scheduler = new Scheduler({ store: fx.store, project: fx.project, engine: fx.engine, clock, log: silentLog, id: "scheduler-main", ...options });
  return {
    ...fx,
    clock,
    scheduler,
    async edit(changes) {
      for (const [path, text] of Object.entries(changes)) {
        const target = join(fx.root, path);
        if (text === null) rmSync(target, { force: true });
        else {
          mkdirSync(dirname(target), { recursive: true });
          writeFileSync(target, text);
        }
      }
      const project = await loadProject(folderSource(fx.root), { executorTypes: ["local"] });
      scheduler.setProject(project);
      return project;
    },
  };
}

export interface Replica<C extends Clock = FakeClock> {
  id: string;
  client: SqlClient;
  store: Store;
  engine: RunEngine;
  scheduler: Scheduler;
  clock: C;
  close(): void;
}

/**
 * Another scheduler on the same project and database file, with its own connection, Store and
 * RunEngine wired as projectFixture wires them (local executor), sharing `clock`.
 */
export async function replica<C extends Clock = FakeClock>(
  fx: Fixture,
  clock: C,
  id: string,
  options: Partial<SchedulerOptions> & {
    wrapOutputs?: (outputs: OutputStore) => OutputStore;
    /** Wraps the replica's database connection (to hold up some of its statements, say). */
    wrapClient?: (client: SqlClient) => SqlClient;
    /** Engine settings over the defaults below (poll and watch intervals). */
    engineOptions?: { pollIntervalMs?: number; watchIntervalMs?: number };
  } = {},
): Promise<Replica<C>> {
  const { wrapOutputs, wrapClient, engineOptions, ...schedulerOptions } = options;
  const url = `file:${join(fx.root, ".kiln/kiln.db")}`;
  const opened = guardRaceErrors(await openDatabase(url), fx.root);
  const client = wrapClient ? wrapClient(opened) : opened;
  const store = await Store.open(client, clock, { secretKey: fixtureSecretKey(fx.root, url) });
  const source = folderSource(fx.root);
  const outputs = wrapOutputs ? wrapOutputs(fileOutputStore(fx.root)) : fileOutputStore(fx.root);
  const runtime: BlockRuntime = {
    project: fx.project,
    source,
    outputs,
    logs: fileLogSink(fx.root),
    secrets: { get: async (name) => `secret:${name}` },
    clock,
  };
  const executors = new ExecutorRegistry().register(
    localExecutor({ runtime, command: [process.execPath, CLI_MAIN], env: { KILN_DATABASE_URL: url } }),
  );
  const engine = new RunEngine({ store, project: fx.project, executors, outputs, clock, pollIntervalMs: 50, watchIntervalMs: 200, ...engineOptions });
  const scheduler = new Scheduler({ store, project: fx.project, engine, clock, log: silentLog, id, ...schedulerOptions });
  return { id, client, store, engine, scheduler, clock, close: () => opened.close() };
}

// ---------------------------------------------------------------------------------------------
// reading what the scheduler wrote

export interface RunRow {
  id: number;
  pipeline_schedule_id: number | null;
  pipeline_uuid: string;
  execution_date: number;
  execution_partition: string;
  status: string;
  owner: string | null;
  passed_sla: number;
  started_at: number | null;
  completed_at: number | null;
  metrics: string;
}

export interface ScheduleRow {
  id: number;
  name: string;
  pipeline_uuid: string;
  schedule_interval: string | null;
  status: string;
  source: string;
  settings: string;
  last_enabled_at: number | null;
  next_run_at: number | null;
  last_execution_date: number | null;
  invalid_reason: string | null;
  /** Plaintext: only rows written before tokens were sealed. */
  token: string | null;
  token_sealed: string | null;
}

function plain(rs: { columns: string[]; rows: ArrayLike<unknown>[] | unknown[] }): Record<string, unknown>[] {
  return (rs.rows as Record<string, unknown>[]).map((row) => ({ ...row }));
}

export async function runs(client: SqlClient, where = "1 = 1", args: Array<string | number | null> = []): Promise<RunRow[]> {
  const rs = await client.execute({ sql: `SELECT * FROM pipeline_runs WHERE ${where} ORDER BY id`, args });
  return plain(rs).map((r) => ({
    id: Number(r.id),
    pipeline_schedule_id: r.pipeline_schedule_id === null ? null : Number(r.pipeline_schedule_id),
    pipeline_uuid: String(r.pipeline_uuid),
    execution_date: Number(r.execution_date),
    execution_partition: String(r.execution_partition),
    status: String(r.status),
    owner: r.owner === null ? null : String(r.owner),
    passed_sla: Number(r.passed_sla),
    started_at: r.started_at === null ? null : Number(r.started_at),
    completed_at: r.completed_at === null ? null : Number(r.completed_at),
    metrics: String(r.metrics),
  }));
}

export async function schedule(client: SqlClient, name: string, pipelineUuid = "p"): Promise<ScheduleRow> {
  const rs = await client.execute({ sql: "SELECT * FROM pipeline_schedules WHERE pipeline_uuid = ? AND name = ?", args: [pipelineUuid, name] });
  const r = plain(rs)[0];
  if (!r) throw new Error(`no schedule ${pipelineUuid}/${name}`);
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: Number(r.id),
    name: String(r.name),
    pipeline_uuid: String(r.pipeline_uuid),
    schedule_interval: r.schedule_interval === null ? null : String(r.schedule_interval),
    status: String(r.status),
    source: String(r.source),
    settings: String(r.settings),
    last_enabled_at: n(r.last_enabled_at),
    next_run_at: n(r.next_run_at),
    last_execution_date: n(r.last_execution_date),
    invalid_reason: r.invalid_reason === null || r.invalid_reason === undefined ? null : String(r.invalid_reason),
    token: r.token === null || r.token === undefined ? null : String(r.token),
    token_sealed: r.token_sealed === null || r.token_sealed === undefined ? null : String(r.token_sealed),
  };
}

export async function blockRunRows(client: SqlClient, where = "1 = 1", args: Array<string | number | null> = []) {
  const rs = await client.execute({ sql: `SELECT * FROM block_runs WHERE ${where} ORDER BY id`, args });
  return plain(rs).map((r) => ({
    id: Number(r.id),
    pipeline_run_id: Number(r.pipeline_run_id),
    block_uuid: String(r.block_uuid),
    status: String(r.status),
    attempt: Number(r.attempt),
    error: r.error === null ? null : String(r.error),
    executor_handle: r.executor_handle === null ? null : String(r.executor_handle),
  }));
}

/** Polls the database (real time) until the run has one of `statuses`; returns it. */
export async function waitForRun(client: SqlClient, id: number, statuses: string[] = ["completed"], limitMs = 20_000): Promise<RunRow> {
  let last: RunRow | undefined;
  await until(
    async () => {
      last = (await runs(client, "id = ?", [id]))[0];
      return last !== undefined && statuses.includes(last.status);
    },
    `pipeline run ${id} to be ${statuses.join(" or ")} (it is ${last?.status ?? "missing"})`,
    limitMs,
  );
  return last!;
}

/** Polls until no run is initial or running (or only those allowed by `except`). */
export async function waitForQuiet(client: SqlClient, limitMs = 20_000): Promise<RunRow[]> {
  let all: RunRow[] = [];
  await until(
    async () => {
      all = await runs(client);
      return all.every((r) => r.status !== "initial" && r.status !== "running");
    },
    "every pipeline run to end",
    limitMs,
  );
  return all;
}

/** Polls until the engines have no run in memory (their promises settled). */
export async function waitForEngines(engines: RunEngine[], limitMs = 20_000): Promise<void> {
  await until(() => engines.every((e) => e.activeRunIds().length === 0), "the engines to finish their runs", limitMs);
}
