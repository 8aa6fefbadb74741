/**
 * An API edit of a triggers.yaml trigger with the web server and the scheduler in separate
 * processes (`kiln start --instance-type web_server` beside `--instance-type scheduler`, one
 * database): the server writes the edit to the file and the database; the scheduler, whose
 * project was loaded from disk before the edit, reads the files again before a sync would change
 * the row, so it never puts the old values back, not even until its next reload.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CLI_MAIN, createAdminKey, queryDb, REPO_ROOT, TempDirs, waitFor } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";

const dirs = new TempDirs();
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  dirs.removeAll();
});

const TRIGGERS = `# triggers for p: reviewed by the data team
triggers:
  # the nightly load (start_time far ahead: it never fires during the test)
  - name: nightly
    schedule_type: time
    schedule_interval: "@daily"   # midnight UTC
    start_time: 2090-01-01 00:00:00
    status: active
    variables:
      round: -1  # set by the test
`;

const PROJECT = {
  "kiln.yaml": "executor_config:\n  in_process: true\n",
  "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n",
  "custom/work.js": "export default () => 1;\n",
  "pipelines/p/triggers.yaml": TRIGGERS,
};

/** `kiln start` as a child process; its log (stderr and stdout) as it grows. */
function startKiln(root: string, instanceType: string, port: number, flags: string[], env: Record<string, string> = {}): { log: () => string; exited: Promise<number | null>; child: ChildProcess } {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !["KILN_DATABASE_URL", "REDIS_URL", "KILN_SECRET_KEY", "KILN_AUTH", "KILN_LOG_LEVEL"].includes(k)) childEnv[k] = v;
  Object.assign(childEnv, { PORT: String(port), HOST: "127.0.0.1", ...env });
  const child = spawn(process.execPath, [CLI_MAIN, "start", root, "--instance-type", instanceType, "--grace-period", "2", ...flags], { cwd: REPO_ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let text = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (text += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (text += c));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { log: () => text, exited, child };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("triggers.yaml edits through a separate web server", () => {
  test("a scheduler in its own process, reloading every 0.1 s, never reverts ten API edits, each kept through its syncs", async () => {
    const root = dirs.project(PROJECT);
    const db = join(root, ".kiln/kiln.db");
    const key = await createAdminKey(root, { KILN_DATABASE_URL: undefined });
    const port = await freePort();
    // debug logging: the scheduler reports every sync, so the test can count them
    const scheduler = startKiln(root, "scheduler", await freePort(), ["--tick-interval", "50", "--reload-interval", "0.1"], { KILN_LOG_LEVEL: "debug" });
    const web = startKiln(root, "web_server", port, []);
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const syncs = () => scheduler.log().split("triggers.yaml synced:").length - 1;
    const row = async () => (await queryDb(db, "SELECT id, status, variables FROM pipeline_schedules WHERE name = 'nightly'"))[0] as { id: number; status: string; variables: string } | undefined;

    await waitFor(async () => (await row()) !== undefined && syncs() > 0, "the scheduler to sync triggers.yaml", 60_000);
    await waitFor(async () => (await fetch(`${base}/api/health`).catch(() => null))?.ok === true, "the web server to answer", 60_000);
    const id = (await row())!.id;

    let checks = 0;
    for (let round = 0; round < 10; round++) {
      const status = round % 2 === 0 ? "inactive" : "active";
      const answer = await fetch(`${base}/api/pipeline_schedules/${id}`, { method: "PUT", headers: auth, body: JSON.stringify({ pipeline_schedule: { status, variables: { round } } }) });
      expect(answer.status).toBe(200);
      // the edit, from the moment the server answered, through the syncs that follow (ten after the last edit)
      const from = syncs();
      const needed = round === 9 ? 10 : 2;
      const deadline = Date.now() + 60_000;
      while (syncs() < from + needed) {
        const now = await row();
        expect({ round, status: now!.status, variables: JSON.parse(now!.variables) }).toEqual({ round, status, variables: { round } });
        checks++;
        if (Date.now() > deadline) throw new Error(`round ${round}: the scheduler did not sync ${needed} times (${syncs() - from})`);
        await sleep(5);
      }
    }
    expect(checks).toBeGreaterThan(10);
    // the last edit is in the file, with every comment kept
    const file = readFileSync(join(root, "pipelines/p/triggers.yaml"), "utf8");
    for (const comment of ["# triggers for p: reviewed by the data team", "# the nightly load", "# midnight UTC"]) expect(file).toContain(comment);
    expect(file).toMatch(/status: active/);
    expect(file).toMatch(/round: 9/);
    // the scheduler did not fail a sync along the way
    expect(scheduler.log()).not.toMatch(/ERROR|project not read again/);

    for (const p of [web, scheduler]) p.child.kill("SIGTERM");
    expect(await web.exited).toBe(0);
    expect(await scheduler.exited).toBe(0);
  }, 180_000);
});
