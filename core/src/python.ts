/**
 * Python blocks (Mage's `.py` block files): what kiln asks of the process that runs one, and the
 * calls such a block makes back into kiln (trigger_pipeline, get_secret_value, get_variable).
 * core only states the contract; @kiln/node runs the interpreter (PythonHost), and the runner
 * shipped with kiln executes the file as Mage does.
 */
import type { JsonObject } from "./domain.ts";

/** The tag that marks a pandas DataFrame travelling as JSON: `{"$type": "pandas.DataFrame", columns, dtypes, records}`. */
export const PYTHON_TYPE_KEY = "$type";

/** A DataFrame output as a TypeScript block receives it. */
export interface DataFrameJson {
  $type: "pandas.DataFrame";
  columns: string[];
  /** pandas dtype per column, so a Python block downstream gets the same types back. */
  dtypes: Record<string, string>;
  records: JsonObject[];
}

/** Whether a block output is a DataFrame sent by a Python block. */
export function isDataFrameJson(value: unknown): value is DataFrameJson {
  return value !== null && typeof value === "object" && (value as JsonObject)[PYTHON_TYPE_KEY] === "pandas.DataFrame" && Array.isArray((value as JsonObject).records);
}

/** Mage's callback statuses (`@callback('success')`, ...). */
export type CallbackStatus = "success" | "failure" | "cancelled";

/** One run of a Python file, as sent to the runner (snake_case: it is read by Python). */
export interface PythonRequest {
  /** block: the decorated block function (and its @test functions); callback / condition: Mage's add-on blocks. */
  mode: "block" | "callback" | "condition";
  project_root: string;
  /** Absolute path of the .py file. */
  module_path: string;
  /** Project-relative path, for messages. */
  module_relative: string;
  /** The decorator that marks the function to call (data_loader, transformer, ...). */
  block_type: string;
  block_uuid: string;
  pipeline_uuid: string;
  /** Positional arguments: the upstream outputs in upstream_blocks order (for a callback, its parent's output). */
  inputs: unknown[];
  /** Mage's runtime variables (see runtimeVariables), with `__error` for a failure callback. */
  kwargs: JsonObject;
  /** Sensors: seconds between polls. */
  poll_interval?: number;
  callback_status?: CallbackStatus;
}

/** What the runner reports when the file ran. */
export interface PythonOutcome {
  /** mode block: the block's output (JSON; DataFrames tagged). */
  output?: unknown;
  /** mode condition: whether the parent block runs. */
  condition?: boolean;
  /** mode callback: how many callback functions ran. */
  called?: number;
}

/** What the runner may ask of kiln while a Python file runs; each returns JSON or throws. */
export interface PythonSession {
  /** A line the file printed or logged (level: stdout, stderr, or a logging level). */
  log(level: string, line: string): void;
  call(method: string, params: JsonObject): Promise<unknown>;
  /** Aborted on cancel or timeout: the host then kills the interpreter's process tree. */
  signal: AbortSignal;
}

/** Runs Python files for block runs; provided by the runtime package (@kiln/node). */
export interface PythonHost {
  /** The interpreter it starts, for messages. */
  readonly interpreter: string;
  /** Resolves with the outcome, or rejects with a PythonBlockError (the traceback) or a BlockError. */
  run(request: PythonRequest, session: PythonSession): Promise<PythonOutcome>;
}

/** A Python file failed: its traceback, or its failed @test messages. */
export class PythonBlockError extends Error {
  constructor(
    message: string,
    /** exception: the file raised (message is the traceback); tests: @test functions failed. */
    readonly kind: "exception" | "tests" | "process",
  ) {
    super(message);
    this.name = "PythonBlockError";
  }
}

/** Whether a block's module is a Python file. */
export function isPythonModule(modulePath: string): boolean {
  return modulePath.endsWith(".py");
}
