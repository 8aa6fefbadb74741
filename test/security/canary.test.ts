/**
 * A canary secret read by blocks (one in a child process, one in kiln's own) that log it,
 * print it, and throw with it, through a real `kiln start`: the value appears in no table of
 * the database, no file of the project, no API answer, no notification delivered to a local
 * webhook, and no line kiln printed. Blocks that return it (data for their downstream blocks)
 * leave it in the output store alone: a block process's in its output file, an in-process
 * block's in its block_outputs row (kiln's default keeps small in-process outputs in the
 * database), both private to kiln's user.
 */
import { afterAll, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createApiKey } from "@kiln/core/auth";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { CLI_MAIN, queryDb, REPO_ROOT, TempDirs, waitFor } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";

const temp = new TempDirs();
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  temp.removeAll();
});

const CANARY = "canary-7f3a9c2e51d84b06";

const LEAKY = (name: string) => `export default async function ${name}(...args) {
  const ctx = args.at(-1);
  const secret = await ctx.secrets.get("canary");
  ctx.logger.info("connecting with " + secret);
  console.log("stdout has " + secret);
  console.error("stderr has " + secret);
  throw new Error("login failed for password " + secret);
}
`;

// a block that returns the secret (upstream of the others, so it completes first): its output is data for downstream blocks, kept in the output
// store only (not masked: a downstream block needs the value it was given), never shown
const RETURNS = (name: string) => `export default async function ${name}(ctx) {
  return { password: await ctx.secrets.get("canary") };
}
`;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

test("the canary secret appears nowhere: tables, files, API answers, the notification, kiln's output", async () => {
  const received: string[] = [];
  const hook = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: async (req) => (received.push(await req.text()), new Response("ok")) });
  try {
    const root = temp.project({
      "kiln.yaml": `notification_config:\n  webhooks:\n    - url: http://127.0.0.1:${hook.port}/hook\n`,
      "pipelines/leaky/metadata.yaml": "blocks:\n  - uuid: returns_it\n    type: custom\n  - uuid: returns_in_kiln\n    type: custom\n    executor_config:\n      in_process: true\n  - uuid: in_child\n    type: custom\n    upstream_blocks: [returns_it]\n  - uuid: in_kiln\n    type: custom\n    upstream_blocks: [returns_it]\n    executor_config:\n      in_process: true\n",
      "custom/returns_it.js": RETURNS("returns_it"),
      "custom/returns_in_kiln.js": RETURNS("returns_in_kiln"),
      "custom/in_child.js": LEAKY("in_child"),
      "custom/in_kiln.js": LEAKY("in_kiln"),
      "pipelines/leaky/triggers.yaml": 'triggers:\n  - {"name": "hourly", "schedule_type": "time", "schedule_interval": "@hourly", "status": "active", "settings": {"create_initial_pipeline_run": true}}\n',
    });
    const dbPath = join(root, ".kiln/kiln.db");
    const secretKey = generateSecretKey();
    const client = await openDatabase(`file:${dbPath}`);
    const store = await Store.open(client);
    await store.putSecret(await importSecretKey(secretKey), "canary", CANARY);
    const { key } = await createApiKey(client, { name: "viewer", role: "viewer" }, Date.now());
    client.close();

    const port = await freePort();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("KILN_") && k !== "REDIS_URL") env[k] = v;
    env.KILN_SECRET_KEY = secretKey;
    const kiln = spawn(process.execPath, [CLI_MAIN, "start", root, "--instance-type", "server_and_scheduler", "--port", String(port), "--host", "127.0.0.1", "--tick-interval", "200"], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(kiln);
    let output = "";
    kiln.stdout!.setEncoding("utf8").on("data", (c: string) => (output += c));
    kiln.stderr!.setEncoding("utf8").on("data", (c: string) => (output += c));
    await waitFor(async () => (await queryDb(dbPath, "SELECT status FROM pipeline_runs")).some((r) => r.status === "failed"), "the run to fail", 60_000);
    await waitFor(() => received.length > 0, "the failure notification", 30_000);

    // the blocks did run, read the secret and fail with their (masked) message
    const errors = (await queryDb(dbPath, "SELECT block_uuid, error FROM block_runs ORDER BY block_uuid")).map((r) => [r.block_uuid, String(r.error)]);
    expect(errors).toEqual([
      ["in_child", expect.stringContaining("login failed for password ***")],
      ["in_kiln", expect.stringContaining("login failed for password ***")],
      ["returns_in_kiln", "null"],
      ["returns_it", "null"],
    ]);

    const base = `http://127.0.0.1:${port}`;
    const headers = { authorization: `Bearer ${key}` };
    const runId = Number((await queryDb(dbPath, "SELECT id FROM pipeline_runs"))[0]?.id);
    const answers: string[] = [];
    for (const path of ["/api/pipeline_runs", `/api/pipeline_runs/${runId}`, `/api/pipeline_runs/${runId}/block_runs`, `/api/pipeline_runs/${runId}/logs`, "/api/block_runs", "/api/pipeline_schedules/1", "/api/status"]) {
      const answer = await fetch(`${base}${path}`, { headers });
      answers.push(`${path} ${answer.status} ${await answer.text()}`);
    }
    const logs = answers.find((a) => a.includes("/logs 200")) ?? "";
    expect(logs).toContain("connecting with ***");
    for (const answer of answers) expect(answer).not.toContain(CANARY);

    for (const body of received) expect(body).not.toContain(CANARY);
    expect(received.join("")).toContain("***");

    const tables = (await queryDb(dbPath, "SELECT name FROM sqlite_master WHERE type = 'table'")).map((r) => String(r.name));
    expect(tables).toContain("block_runs");
    for (const table of tables) {
      const rows = await queryDb(dbPath, `SELECT * FROM "${table}"`);
      expect([table, JSON.stringify(rows).includes(CANARY)]).toEqual([table, table === "block_outputs"]);
    }
    // the in-process block's returned value is its output row, and nothing else there holds the secret
    const outputRows = await queryDb(dbPath, "SELECT block_uuid, value FROM block_outputs");
    expect(outputRows.filter((r) => String(r.value).includes(CANARY)).map((r) => r.block_uuid)).toEqual(["returns_in_kiln"]);
    // so the database and its -wal/-shm, where that row lives, are private to kiln's user, as the output file is
    for (const file of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
      expect(existsSync(file)).toBe(true);
      expect([file, statSync(file).mode & 0o777]).toEqual([file, 0o600]);
    }
    const exited = new Promise((r) => kiln.once("exit", r));
    kiln.kill("SIGTERM");
    await exited;
    const partitionOf = String((await queryDb(dbPath, "SELECT execution_partition FROM pipeline_runs"))[0]?.execution_partition);
    const outputFile = join(root, ".variables/pipelines/leaky", partitionOf, "returns_it/output_0");
    const databaseFiles = [dbPath, `${dbPath}-wal`, `${dbPath}-shm`];
    for (const file of filesUnder(root)) {
      if (!statSync(file).isFile()) continue;
      // the database's bytes may hold the output row (it is data, for downstream blocks); no other file does
      if (databaseFiles.includes(file)) continue;
      expect([file, readFileSync(file).includes(CANARY)]).toEqual([file, file === outputFile]);
    }
    // the in-process block left no file: its output is the row
    expect(existsSync(join(root, ".variables/pipelines/leaky", partitionOf, "returns_in_kiln"))).toBe(false);
    // the copies, in the output store, are private to kiln's user
    expect(statSync(outputFile).mode & 0o777).toBe(0o600);
    for (const file of databaseFiles) if (existsSync(file)) expect([file, statSync(file).mode & 0o777]).toEqual([file, 0o600]);
    expect(filesUnder(root).some((f) => f.endsWith(".log"))).toBe(true);
    expect(output).not.toContain(CANARY);
  } finally {
    await hook.stop(true);
  }
}, 120_000);
