/** @kiln/core/runtime: what a kiln process runs blocks and add-ons with: Python, runtime variables, secrets, trigger tokens, log storage in the database. */
export * from "./python.ts";
export { pythonAddonRunner, pythonKwargs, runPythonAddon, runPythonBlock, runPythonFile, type PythonAddonArgs, type PythonRunArgs } from "./python-blocks.ts";
export * from "./runtime-variables.ts";
export * from "./addon-runtime.ts";
export * from "./secrets.ts";
export * from "./trigger-tokens.ts";
export * from "./secret-mask.ts";
export * from "./database-logs.ts";
