/**
 * A missing Python interpreter is a clear error at load (exit 2), naming every Python module
 * that would need it: blocks, and the callbacks and conditionals that run beside the engine.
 */
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { runKiln } from "../helpers/cli.ts";
import { writeTempProject } from "../helpers/fixtures.ts";

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

test("a .py callback and conditional of a TypeScript block are named when python is missing", async () => {
  const root = writeTempProject({
    "kiln.yaml": "",
    "pipelines/p/metadata.yaml": `blocks:
  - uuid: load
    type: data_loader
callbacks:
  - uuid: tell
    upstream_blocks: [load]
conditionals:
  - uuid: gate
    upstream_blocks: [load]
`,
    "data_loaders/load.ts": "export default () => [1, 2];\n",
    "callbacks/tell.py": "@callback('success')\ndef tell(parent_block_data, **kwargs):\n    pass\n",
    "conditionals/gate.py": "@condition\ndef gate(*args, **kwargs):\n    return True\n",
  });
  roots.push(root);
  const result = await runKiln(["run", root, "p"], { KILN_PYTHON: "/nowhere/python3" });
  expect(result.code).toBe(2);
  expect(result.stderr).toContain("p/tell (callbacks/tell.py, a callback)");
  expect(result.stderr).toContain("p/gate (conditionals/gate.py, a conditional)");
  expect(result.stderr).not.toContain("    at ");
});
