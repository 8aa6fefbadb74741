/**
 * A block's process holds none of kiln's keys: KILN_SECRET_KEY, KILN_EVENTS_TOKEN, the
 * database URL and token are not in its process.env, in a child `kiln run-block` and in
 * kiln's own process (in_process), nor in a child's /proc/self/environ (what it was started
 * with); the block still reads its secrets through ctx.secrets. No admin key is kept on disk.
 */
import { afterAll, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { CLI_MAIN, printedPartition, readOutput, REPO_ROOT, runKiln, TempDirs, waitFor } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";

const temp = new TempDirs();
afterAll(() => temp.removeAll());

const DUMP = `import { readFileSync } from "node:fs";
export default async function dump(ctx) {
  let environ = "";
  try { environ = readFileSync("/proc/self/environ", "utf8"); } catch {}
  let adminKey = null;
  try { adminKey = readFileSync(".kiln/admin-api-key", "utf8"); } catch {}
  const secret = await ctx.secrets.get("warehouse_password");
  return { env: process.env, environ, adminKey, secretReadable: secret === "hunter2-canary" };
}
`;

const PROJECT = {
  "kiln.yaml": "variables:\n  region: eu\n",
  "pipelines/p/metadata.yaml": "blocks:\n  - uuid: dump_child\n    type: custom\n  - uuid: dump_in_process\n    type: custom\n    executor_config:\n      in_process: true\n",
  "custom/dump_child.js": DUMP,
  "custom/dump_in_process.js": DUMP,
};

test("a block that dumps its environment finds none of kiln's keys, in a child process or in kiln's own", async () => {
  const root = temp.project(PROJECT);
  const dbPath = join(root, ".kiln/kiln.db");
  const secretKey = generateSecretKey();
  const client = await openDatabase(`file:${dbPath}`);
  const store = await Store.open(client);
  await store.putSecret(await importSecretKey(secretKey), "warehouse_password", "hunter2-canary");
  client.close();
  const keys = {
    KILN_SECRET_KEY: secretKey,
    KILN_EVENTS_TOKEN: "events-token-0123456789abcdef",
    KILN_DATABASE_URL: `file:${dbPath}`,
    KILN_DATABASE_AUTH_TOKEN: "db-auth-token-0123456789",
  };
  const result = await runKiln(["run", root, "p"], keys);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  const partition = printedPartition(result.stdout);
  for (const block of ["dump_child", "dump_in_process"]) {
    const dumped = readOutput(root, "p", partition, block) as { env: Record<string, string>; environ: string; adminKey: string | null; secretReadable: boolean };
    expect(dumped.secretReadable).toBe(true);
    expect(dumped.adminKey).toBeNull();
    for (const name of Object.keys(keys)) expect([block, name, dumped.env[name]]).toEqual([block, name, undefined]);
    // an in_process block shares kiln's process, whose /proc/self/environ keeps what kiln was
    // started with (the kernel's copy, which no runtime can rewrite): only a child's is clean
    const seen = JSON.stringify(dumped.env) + (block === "dump_child" ? dumped.environ : "");
    for (const [name, value] of Object.entries(keys)) expect([block, name, seen.includes(value)]).toEqual([block, name, false]);
    expect(dumped.environ.length).toBeGreaterThan(0);
  }
});

test("kiln start removes the admin key an older kiln left on disk, and keeps none", async () => {
  const root = temp.project(PROJECT);
  const legacy = join(root, ".kiln/admin-api-key");
  await runKiln(["api-key", "list", "--project", root], { KILN_DATABASE_URL: undefined });
  writeFileSync(legacy, "kiln_legacy_key\n", { mode: 0o600 });
  const port = await freePort();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("KILN_")) env[k] = v;
  const child = spawn(process.execPath, [CLI_MAIN, "start", root, "--instance-type", "web_server", "--port", String(port), "--host", "127.0.0.1"], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (output += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (output += c));
  try {
    await waitFor(() => output.includes("listening"), "the server", 30_000);
    expect(existsSync(legacy)).toBe(false);
    expect(output).toContain(`removed ${legacy}`);
    expect(output).toContain("kiln api-key create");
    expect(output).not.toContain("kiln_legacy_key");
  } finally {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
});
