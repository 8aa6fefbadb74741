/**
 * kiln as a user installs it: the README's setup line (run here with npm's global prefix in a
 * temporary folder) puts `kiln`, `kiln-node` and `kiln-deno` on the PATH; with those commands,
 * from a folder outside the repository, the example project copied elsewhere (no node_modules,
 * blocks importing "@kiln/core") and a `kiln init` project run to completion on Bun, Node and
 * Deno, with `kiln run` (each block a `kiln run-block` child) and `kiln start` (an API-triggered
 * run); the init project type-checks with tsc against kiln's types, and fails on a type error;
 * a plugin kiln.yaml names but the project lacks is exit 2 naming the package and how to install it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAdminKey, REPO_ROOT, TempDirs } from "../helpers/cli.ts";
import { until } from "../helpers/fixtures.ts";
import { freePort } from "../helpers/ports.ts";

const temp = new TempDirs();
const prefix = temp.make("kiln-npm-prefix-");
const BIN = join(prefix, "bin");
const PATH = `${BIN}:${process.env.PATH}`;
const hasDeno = spawnSync("deno", ["--version"]).status === 0;
const started: ChildProcess[] = [];

type Runtime = "bun" | "node" | "deno";
const RUNTIMES: Runtime[] = ["bun", "node", "deno"];
/** The command the setup installs for each runtime. */
const COMMAND: Record<Runtime, string> = { bun: "kiln", node: "kiln-node", deno: "kiln-deno" };

/** The README's one-line setup, without its last step (starting the server). */
function readmeSetup(): string {
  const line = readFileSync(join(REPO_ROOT, "README.md"), "utf8").split("\n").find((l) => l.startsWith("npm install -g bun"));
  if (!line) throw new Error("README.md has no setup line starting with `npm install -g bun`");
  const serverStep = " && bun run server";
  expect(line.endsWith(serverStep)).toBe(true);
  return line.slice(0, -serverStep.length);
}

const env = (extra: Record<string, string> = {}) => ({ ...process.env, PATH, npm_config_prefix: prefix, KILN_DATABASE_URL: "", ...extra });

/** Runs an installed kiln command from a folder outside the repository. */
function kiln(runtime: Runtime, args: string[], extra: Record<string, string> = {}) {
  const childEnv: Record<string, string | undefined> = env(extra);
  delete childEnv.KILN_DATABASE_URL;
  const result = spawnSync(COMMAND[runtime], args, { cwd: temp.make("kiln-cwd-"), env: childEnv, encoding: "utf8", timeout: 180_000 });
  return { code: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

/** examples/etl copied outside the repository, without its local state. */
function copiedExample(): string {
  const root = join(temp.make("kiln-etl-copy-"), "etl");
  cpSync(join(REPO_ROOT, "examples/etl"), root, { recursive: true, filter: (src) => !/\/\.(kiln|variables|logs)(\/|$)/.test(src) });
  return root;
}

function partitionOf(stdout: string): string {
  const match = /^execution partition: (.+)$/m.exec(stdout);
  if (!match?.[1]) throw new Error(`no execution partition in:\n${stdout}`);
  return match[1].trim();
}

beforeAll(() => {
  const setup = spawnSync("bash", ["-c", readmeSetup()], { cwd: REPO_ROOT, env: env(), encoding: "utf8", timeout: 240_000 });
  if (setup.status !== 0) throw new Error(`the README's setup failed (${setup.status}):\n${setup.stdout}\n${setup.stderr}`);
}, 300_000);

afterAll(async () => {
  for (const child of started) {
    if (child.pid === undefined || child.exitCode !== null) continue;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      continue;
    }
    const late = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }, 5000);
    await exited;
    clearTimeout(late);
  }
  temp.removeAll();
}, 30_000);

describe("the README's setup", () => {
  test("puts kiln (Bun), kiln-node and kiln-deno on the PATH; kiln --version answers", () => {
    for (const command of Object.values(COMMAND)) {
      const found = spawnSync("bash", ["-c", `command -v ${command}`], { env: env(), encoding: "utf8" });
      expect(found.stdout.trim()).toBe(join(BIN, command));
    }
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "cli/package.json"), "utf8")) as { version: string };
    for (const runtime of RUNTIMES.filter((r) => r !== "deno" || hasDeno)) {
      const result = kiln(runtime, ["--version"]);
      expect([runtime, result.code, result.stdout]).toEqual([runtime, 0, `kiln ${version}\n`]);
    }
  }, 120_000);
});

describe("projects outside the repository", () => {
  for (const runtime of RUNTIMES) {
    test.skipIf(runtime === "deno" && !hasDeno)(`on ${runtime}: the example copied elsewhere runs with its @kiln/core imports`, () => {
      const root = copiedExample();
      expect(existsSync(join(root, "node_modules"))).toBe(false);
      expect(readFileSync(join(root, "data_loaders/load_orders.ts"), "utf8")).toContain('from "@kiln/core"');
      const result = kiln(runtime, ["run", root, "etl"]);
      expect(result.stderr).not.toContain("Cannot find");
      expect(result.code).toBe(0);
      const partition = partitionOf(result.stdout);
      // the last block ran in its own `kiln run-block` process on this runtime and stored its output
      expect(existsSync(join(root, ".variables/pipelines/etl", partition, "export_report/output_0"))).toBe(true);
    }, 200_000);

    test.skipIf(runtime === "deno" && !hasDeno)(`on ${runtime}: a kiln init project runs`, () => {
      const root = join(temp.make("kiln-init-anywhere-"), "proj");
      const init = kiln(runtime, ["init", root]);
      expect(init.code).toBe(0);
      const result = kiln(runtime, ["run", root, "example"]);
      expect(result.code).toBe(0);
      const partition = partitionOf(result.stdout);
      const output = JSON.parse(readFileSync(join(root, ".variables/pipelines/example", partition, "export_numbers/output_0"), "utf8")) as unknown;
      expect(output).toEqual({ count: 4, sum: 30 });
    }, 200_000);
  }

  for (const runtime of RUNTIMES) {
    test.skipIf(runtime === "deno" && !hasDeno)(`on ${runtime}: kiln start serves the copied example and runs an API-triggered run to completion`, async () => {
      const root = copiedExample();
      const port = await freePort();
      const logFile = join(root, "kiln.log");
      const out = openSync(logFile, "a");
      const child = spawn(COMMAND[runtime], ["start", root, "--instance-type", "server_and_scheduler", "--port", String(port), "--host", "127.0.0.1"], {
        cwd: temp.make("kiln-cwd-"),
        detached: true,
        stdio: ["ignore", out, out],
        env: { ...env(), KILN_DATABASE_URL: `file:${join(root, ".kiln/kiln.db")}` },
      });
      started.push(child);
      const url = `http://127.0.0.1:${port}`;
      const log = () => readFileSync(logFile, "utf8").slice(-3000);
      await until(
        async () => {
          if (child.exitCode !== null) throw new Error(`kiln exited ${child.exitCode}:\n${log()}`);
          return fetch(`${url}/api/health`).then((r) => r.ok, () => false);
        },
        `kiln start on ${runtime}`,
        90_000,
      );
      const key = await createAdminKey(root, { KILN_DATABASE_URL: `file:${join(root, ".kiln/kiln.db")}` });
      const auth = { authorization: `Bearer ${key}` };
      let schedule: { id: number; token: string } | undefined;
      await until(
        async () => {
          const list = (await (await fetch(`${url}/api/pipelines/etl/pipeline_schedules`, { headers: auth })).json()) as { pipeline_schedules?: Array<{ id: number; token: string; name: string }> };
          schedule = list.pipeline_schedules?.find((s) => s.name === "on_demand" && s.token);
          return schedule !== undefined;
        },
        "the on_demand trigger synced from triggers.yaml",
        60_000,
      );
      const created = await fetch(`${url}/api/pipeline_schedules/${schedule!.id}/pipeline_runs/${schedule!.token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ pipeline_run: { variables: { min_total: 10 } } }),
      });
      expect(created.status).toBe(201);
      const runId = ((await created.json()) as { pipeline_run: { id: number } }).pipeline_run.id;
      let status = "";
      await until(
        async () => {
          status = ((await (await fetch(`${url}/api/pipeline_runs/${runId}`, { headers: auth })).json()) as { pipeline_run: { status: string } }).pipeline_run.status;
          return status !== "initial" && status !== "running";
        },
        `run ${runId} to end on ${runtime}`,
        120_000,
      );
      expect([status, status === "completed" ? "" : log()]).toEqual(["completed", ""]);
      process.kill(-child.pid!, "SIGTERM");
    }, 300_000);
  }
});

describe("kiln init's editor setup", () => {
  test("tsc --noEmit passes in a kiln init project, and fails on a type error in a block", () => {
    const root = join(temp.make("kiln-init-tsc-"), "proj");
    expect(kiln("bun", ["init", root]).code).toBe(0);
    expect(readdirSync(root)).toContain("tsconfig.json");
    const tsc = join(REPO_ROOT, "node_modules/.bin/tsc");
    const clean = spawnSync(tsc, ["--noEmit", "-p", root], { cwd: root, encoding: "utf8" });
    expect([clean.status, clean.stdout]).toEqual([0, ""]);
    // a transformer that returns strings where its signature says numbers
    writeFileSync(
      join(root, "transformers/square_numbers.ts"),
      'import { transformer, type BlockContext } from "@kiln/core";\n\nexport default transformer((numbers: number[], ctx: BlockContext): number[] => numbers.map((n) => `${n}${ctx.blockUuid}`));\n',
    );
    // and a misspelled context field, which only kiln's types can know about
    writeFileSync(join(root, "data_loaders/load_numbers.ts"), 'import { dataLoader } from "@kiln/core";\n\nexport default dataLoader((ctx) => [ctx.executionDat]);\n');
    const broken = spawnSync(tsc, ["--noEmit", "-p", root], { cwd: root, encoding: "utf8" });
    expect(broken.status).not.toBe(0);
    expect(broken.stdout).toContain("transformers/square_numbers.ts");
    expect(broken.stdout).toContain("not assignable to type 'number'");
    expect(broken.stdout).toContain("Property 'executionDat' does not exist on type 'BlockContext'");
  }, 400_000);
});

describe("plugins", () => {
  test("a plugin kiln.yaml names but the project lacks: exit 2 naming the package and how to install it", () => {
    const root = join(temp.make("kiln-plugin-missing-"), "proj");
    expect(kiln("bun", ["init", root]).code).toBe(0);
    writeFileSync(join(root, "kiln.yaml"), "executor_type: local\nplugins:\n  - kiln-executor-nowhere\n");
    const result = kiln("bun", ["run", root, "example"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"kiln-executor-nowhere"');
    expect(result.stderr).toContain("npm install kiln-executor-nowhere");
    rmSync(join(root, ".kiln"), { recursive: true, force: true });
  }, 60_000);
});
