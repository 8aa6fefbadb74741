/**
 * README's "Your first pipeline", as a user follows it: the shell blocks of that section are read
 * from README.md and run in order, as one bash script (set -e, so any failing command fails the
 * test), in a temporary folder outside the repository, with `kiln` on the PATH as the README's
 * setup leaves it (`npm install -g ./cli` links the cli's bin, cli/src/main.ts; here a symlink to
 * it in a temporary bin folder, the install test runs the npm step itself). Then the project's
 * database is checked: a run from `kiln run`, and a completed run of the trigger the walk-through
 * added, created by the scheduler.
 */
import { afterAll, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { createClient } from "@libsql/client";
import { CLI_MAIN, REPO_ROOT, TempDirs } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";

const temp = new TempDirs();
afterAll(() => temp.removeAll());

/** The ```sh blocks of README's "## Your first pipeline" section, in order. */
function walkThrough(): string[] {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  const start = readme.indexOf("\n## Your first pipeline\n");
  if (start < 0) throw new Error('README.md has no "## Your first pipeline" section');
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

test("README's first pipeline: every command runs, from kiln init to a completed scheduled run", async () => {
  const blocks = walkThrough();
  expect(blocks.length).toBeGreaterThanOrEqual(3);
  const script = blocks.join("\n");
  for (const step of ["kiln init shop", "kiln run shop example", "kiln trigger add", "kiln start shop", "kill %1"]) expect(script).toContain(step);

  const bin = join(temp.make("kiln-bin-"), "bin");
  mkdirSync(bin);
  symlinkSync(CLI_MAIN, join(bin, "kiln"));
  const cwd = temp.make("kiln-first-pipeline-");
  const port = await freePort();
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && key !== "KILN_DATABASE_URL") env[key] = value;
  Object.assign(env, { PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH}`, PORT: String(port) });

  const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const limit = setTimeout(() => {
      output += "\n(test: the walk-through did not finish in 150 s)";
      process.kill(-child.pid!, "SIGKILL");
    }, 150_000);
    child.once("exit", (exit) => {
      clearTimeout(limit);
      resolve(exit);
    });
  });
  try {
    // whatever the script left behind (a kiln start it did not get to kill)
    process.kill(-child.pid!, "SIGTERM");
  } catch {
    // the group is gone
  }
  expect([code, code === 0 ? "" : output]).toEqual([0, ""]);
  // the output of `cat` and of the API as the reader sees them
  expect(output).toContain('{"count":4,"sum":30}');
  expect(output).toMatch(/"pipeline_schedule_id":\d+,.*"status":"completed"/);

  const db = createClient({ url: `file:${join(cwd, "shop/.kiln/kiln.db")}` });
  try {
    const runs = await db.execute(
      "SELECT r.status, s.name FROM pipeline_runs r LEFT JOIN pipeline_schedules s ON s.id = r.pipeline_schedule_id ORDER BY r.id",
    );
    const rows = runs.rows.map((r) => [r.status, r.name]);
    expect(rows[0]).toEqual(["completed", null]);
    expect(rows.some(([status, name]) => status === "completed" && name === "every_ten_seconds")).toBe(true);
  } finally {
    db.close();
  }
}, 200_000);
