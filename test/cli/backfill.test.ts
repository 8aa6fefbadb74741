/**
 * `kiln backfill create|start|cancel|retry|status`, run as a real child process: the rows each
 * writes, the one-line exit-2 errors that write nothing, and a backfill carried to completed by
 * the scheduler (`kiln start`), which is what executes its runs.
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CLI_MAIN, killQuietly, queryDb, REPO_ROOT, runKiln, TempDirs, waitFor, waitGone, type KilnResult } from "../helpers/cli.ts";

const temp = new TempDirs();
const leftovers: number[] = [];
afterAll(() => {
  killQuietly(leftovers);
  temp.removeAll();
});

let project: string;
let db: string;

beforeEach(() => {
  project = temp.project({
    "kiln.yaml": "",
    "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n  - uuid: save\n    type: data_exporter\n    upstream_blocks: [load]\n",
    "data_loaders/load.js": "export default function load(ctx) { return ctx.variables.region ?? null; }\n",
    "data_exporters/save.js": "export default function save(region, ctx) { return { region }; }\n",
  });
  db = join(temp.make("kiln-db-"), "kiln.db");
});

function kiln(args: string[]): Promise<KilnResult> {
  return runKiln(args, { KILN_DATABASE_URL: `file:${db}` });
}

/** `kiln backfill create` for pipeline p over three days of January 2024, plus `extra` flags. */
function create(extra: string[] = []): Promise<KilnResult> {
  return kiln(["backfill", "create", project, "p", "--name", "january", "--start", "2024-01-01", "--end", "2024-01-03", "--interval-type", "day", ...extra]);
}

async function backfillRows(): Promise<Array<Record<string, unknown>>> {
  return queryDb(db, "SELECT id, name, status, interval_type, interval_units, variables, block_uuid, max_concurrent_runs, start_datetime, end_datetime FROM backfills ORDER BY id");
}

async function runRows(): Promise<Array<{ id: number; status: string; execution_partition: string }>> {
  return (await queryDb(db, "SELECT id, status, execution_partition FROM pipeline_runs WHERE backfill_id IS NOT NULL ORDER BY id")) as never;
}

/** Exit 2 with exactly one `kiln: ...` line on stderr matching `message`, nothing on stdout. */
function expectUsageError(result: KilnResult, message: RegExp): void {
  expect(result.stdout).toBe("");
  expect(result.stderr.split("\n")).toHaveLength(2);
  expect(result.stderr).toStartWith("kiln: ");
  expect(result.stderr).toMatch(message);
  expect(result.code).toBe(2);
}

describe("kiln backfill create", () => {
  test("stores the backfill in status initial, and says how to start it and who runs it", async () => {
    const result = await create(["--interval-units", "1", "--variables", '{"region": "eu"}', "--block-uuid", "load", "--max-concurrent-runs", "2"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      "backfill 1 created: january, pipeline p, 3 execution dates from 2024-01-01T00:00:00.000Z to 2024-01-03T00:00:00.000Z every day (status initial)\n" +
        `start it with: kiln backfill start ${project} 1 (its runs are then executed by the scheduler, kiln start ${project})\n`,
    );
    expect(await backfillRows()).toEqual([
      {
        id: 1,
        name: "january",
        status: "initial",
        interval_type: "day",
        interval_units: 1,
        variables: '{"region":"eu"}',
        block_uuid: "load",
        max_concurrent_runs: 2,
        start_datetime: Date.UTC(2024, 0, 1),
        end_datetime: Date.UTC(2024, 0, 3),
      },
    ]);
    expect(await runRows()).toEqual([]);
  });

  test("--start-now --json creates the runs at once and prints the started backfill", async () => {
    const result = await create(["--start-now", "--json"]);
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout);
    expect(printed).toMatchObject({
      backfill: { id: 1, name: "january", status: "running", startDatetime: "2024-01-01T00:00:00.000Z", endDatetime: "2024-01-03T00:00:00.000Z" },
      totalDates: 3,
      runsCreated: 3,
    });
    expect(printed.backfill.startedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect((await runRows()).map((r) => [r.status, r.execution_partition])).toEqual([
      ["initial", "backfill_1/20240101T000000"],
      ["initial", "backfill_1/20240102T000000"],
      ["initial", "backfill_1/20240103T000000"],
    ]);
  });
});

describe("kiln backfill start, status, cancel, retry", () => {
  test("status before and after start; a second start is refused and creates nothing", async () => {
    await create(["--max-concurrent-runs", "2"]);
    const before = await kiln(["backfill", "status", project, "1"]);
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/^backfill 1: january \(pipeline p\)\nstatus: initial \(created \S+, started -, completed -\)\n/);
    expect(before.stdout).toContain("dates: 3, from 2024-01-01T00:00:00.000Z to 2024-01-03T00:00:00.000Z, every day\n");
    expect(before.stdout).toContain("max concurrent runs: 2\n");
    expect(before.stdout).toContain("runs: initial 0, running 0, completed 0, failed 0, cancelled 0, no run yet 3\n");

    const start = await kiln(["backfill", "start", project, "1"]);
    expect(start.code).toBe(0);
    expect(start.stdout).toBe(`backfill 1 started: 3 runs created; the scheduler (kiln start ${project}) executes them\n`);
    expect(await runRows()).toHaveLength(3);

    const status = await kiln(["backfill", "status", project, "1", "--json"]);
    expect(JSON.parse(status.stdout)).toMatchObject({
      backfill: { id: 1, status: "running" },
      totalDates: 3,
      counts: { initial: 3, running: 0, completed: 0, failed: 0, cancelled: 0 },
    });

    expectUsageError(await kiln(["backfill", "start", project, "1"]), /^kiln: backfill 1 is running: only an initial backfill can be started$/m);
    expect(await runRows()).toHaveLength(3);
  });

  test("cancel cancels the backfill and its runs; a second cancel is refused", async () => {
    await create(["--start-now"]);
    const result = await kiln(["backfill", "cancel", project, "1"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toStartWith("backfill 1 cancelled: 3 runs cancelled");
    expect((await backfillRows())[0]!.status).toBe("cancelled");
    expect((await runRows()).map((r) => r.status)).toEqual(["cancelled", "cancelled", "cancelled"]);
    expectUsageError(await kiln(["backfill", "cancel", project, "1"]), /backfill 1 is cancelled: only an initial or running backfill can be cancelled/);
    expectUsageError(await kiln(["backfill", "retry", project, "1"]), /backfill 1 is cancelled: only a failed or running backfill can be retried/);
  });

  test("retry creates a new run for each date whose latest run failed, and moves a failed backfill back to running", async () => {
    await create(["--start-now"]);
    const nothing = await kiln(["backfill", "retry", project, "1"]);
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toBe("backfill 1: nothing to retry (no date's latest run failed or was cancelled)\n");

    // as if the scheduler had run the backfill and one date had failed
    const [first] = await runRows();
    await queryDb(db, "UPDATE pipeline_runs SET status = 'completed' WHERE backfill_id = 1");
    await queryDb(db, "UPDATE pipeline_runs SET status = 'failed' WHERE id = ?", [first!.id]);
    await queryDb(db, "UPDATE backfills SET status = 'failed' WHERE id = 1");

    const result = await kiln(["backfill", "retry", project, "1", "--json"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ id: 1, runsCreated: 1 });
    expect((await backfillRows())[0]!.status).toBe("running");
    const runs = await runRows();
    expect(runs).toHaveLength(4);
    expect(runs[3]).toMatchObject({ status: "initial", execution_partition: first!.execution_partition });
    const status = await kiln(["backfill", "status", project, "1"]);
    expect(status.stdout).toContain("runs: initial 1, running 0, completed 2, failed 0, cancelled 0\n");
  });

  test("the scheduler (kiln start) executes the runs and completes the backfill", async () => {
    await create(["--start-now", "--variables", '{"region": "eu"}']);
    const child = spawn(process.execPath, [CLI_MAIN, "start", project, "--tick-interval", "100"], {
      cwd: REPO_ROOT,
      env: { ...process.env, KILN_DATABASE_URL: `file:${db}` },
      stdio: "ignore",
    });
    leftovers.push(child.pid!);
    try {
      await waitFor(async () => (await backfillRows())[0]!.status === "completed", "the backfill to complete", 30_000, 100);
    } finally {
      child.kill("SIGTERM");
      await waitGone([child.pid!], 30_000);
    }
    expect((await runRows()).map((r) => r.status)).toEqual(["completed", "completed", "completed"]);
    const status = await kiln(["backfill", "status", project, "1"]);
    expect(status.stdout).toMatch(/status: completed \(created \S+, started \S+, completed \S+\)/);
    expect(status.stdout).toContain("runs: initial 0, running 0, completed 3, failed 0, cancelled 0\n");
  }, 60_000);
});

describe("usage errors: exit 2, one line, nothing written", () => {
  const before: Array<{ name: string; args: () => string[]; message: RegExp }> = [
    { name: "create without --name", args: () => ["create", project, "p", "--start", "2024-01-01", "--end", "2024-01-02", "--interval-type", "day"], message: /--name: required/ },
    { name: "create with an offset-less --start", args: () => ["create", project, "p", "--name", "x", "--start", "2024-01-01T00:00", "--end", "2024-01-02", "--interval-type", "day"], message: /--start: .*add Z for UTC/ },
    { name: "create with a day the month lacks", args: () => ["create", project, "p", "--name", "x", "--start", "2024-02-30", "--end", "2024-03-02", "--interval-type", "day"], message: /--start: .*no such date/ },
    { name: "create with --end before --start", args: () => ["create", project, "p", "--name", "x", "--start", "2024-01-02", "--end", "2024-01-01", "--interval-type", "day"], message: /--end: 2024-01-01T00:00:00.000Z is before --start 2024-01-02T00:00:00.000Z/ },
    { name: "create with an unknown --interval-type", args: () => ["create", project, "p", "--name", "x", "--start", "2024-01-01", "--end", "2024-01-02", "--interval-type", "fortnight"], message: /--interval-type: expected one of minute, hour, day, week, month, year, got "fortnight"/ },
    { name: "create with --interval-units 0", args: () => ["create", project, "p", "--name", "x", "--start", "2024-01-01", "--end", "2024-01-02", "--interval-type", "day", "--interval-units", "0"], message: /--interval-units: expected a positive integer/ },
    { name: "create with too many dates", args: () => ["create", project, "p", "--name", "x", "--start", "2024-01-01", "--end", "2025-01-01", "--interval-type", "minute"], message: /--end: the backfill would have 527041 execution dates, more than the limit of 100000/ },
    { name: "create with bad JSON in --variables", args: () => ["create", project, "p", "--name", "x", "--start", "2024-01-01", "--end", "2024-01-02", "--interval-type", "day", "--variables", "{"], message: /--variables: expected a JSON object, got invalid JSON/ },
    { name: "create with an unknown pipeline", args: () => ["create", project, "zz", "--name", "x", "--start", "2024-01-01", "--end", "2024-01-02", "--interval-type", "day"], message: /no pipeline zz in .* \(pipelines: p\)/ },
    { name: "create with an unknown --block-uuid", args: () => ["create", project, "p", "--name", "x", "--start", "2024-01-01", "--end", "2024-01-02", "--interval-type", "day", "--block-uuid", "nope"], message: /--block-uuid: pipeline p has no block nope \(blocks: load, save\)/ },
    { name: "status before the project has a database", args: () => ["status", project, "1"], message: /backfill 1 does not exist \(the project has no database yet at / },
    { name: "start with an id that is not a number", args: () => ["start", project, "one"], message: /<backfill_id>: expected a positive integer, got "one"/ },
    { name: "an unknown subcommand", args: () => ["resume", project, "1"], message: /expected create, start, cancel, retry or status, got resume/ },
    { name: "an unknown project", args: () => ["status", join(project, "nope"), "1"], message: /no project at .*nope/ },
  ];
  for (const c of before) {
    test(`${c.name}: no database is created`, async () => {
      expectUsageError(await kiln(["backfill", ...c.args()]), c.message);
      expect(existsSync(db)).toBe(false);
      expect(existsSync(join(project, ".kiln"))).toBe(false);
    });
  }

  for (const action of ["start", "cancel", "retry", "status"]) {
    test(`${action} of a backfill that does not exist: the database is unchanged`, async () => {
      await create();
      const rows = await backfillRows();
      expectUsageError(await kiln(["backfill", action, project, "99"]), /^kiln: backfill 99 does not exist$/m);
      expect(await backfillRows()).toEqual(rows);
      expect(await runRows()).toEqual([]);
    });
  }
});
