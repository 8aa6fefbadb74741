/**
 * A warm block process on Deno waits for its block run: Deno's stdin does not hold the event loop
 * open by itself, so a spare used to end with exit code 70 ("a promise that never settled")
 * before it was handed anything, failing block runs at random.
 */
import { afterAll, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/cli.ts";
import { writeTempProject } from "../helpers/fixtures.ts";

const hasDeno = Bun.spawnSync(["deno", "--version"]).exitCode === 0;
const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

test.skipIf(!hasDeno)("on deno, a warm kiln run-block stays up while it waits, and ends when its stdin does", async () => {
  const root = writeTempProject({ "kiln.yaml": "", "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n", "data_loaders/load.ts": "export default () => 1;\n" });
  roots.push(root);
  const child = spawn(join(REPO_ROOT, "cli/bin/kiln-deno"), ["run-block", "--warm", root], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  // booted and idle for a while: still waiting for its block run
  const early = await Promise.race([exited, new Promise<"waiting">((resolve) => setTimeout(() => resolve("waiting"), 4000))]);
  expect({ early, stderr }).toEqual({ early: "waiting", stderr: "" });
  child.stdin!.end();
  expect(await exited).toBe(0);
}, 60_000);
