/**
 * The block authoring API: a block module default-exports a function made with one of these
 * helpers. The function receives its upstream blocks' outputs, in upstream_blocks order, then
 * the context; it returns its output (JSON-serialisable) or throws.
 */
import type { JsonObject } from "./domain.ts";
import type { BlockType } from "./project/types.ts";

export interface BlockLogger {
  info(message: string, fields?: JsonObject): void;
  warn(message: string, fields?: JsonObject): void;
  error(message: string, fields?: JsonObject): void;
}

export interface BlockSecrets {
  /** The decrypted value of a secret stored in the project's database. */
  get(name: string): Promise<string>;
}

/** What a block knows about the run it is part of (Mage's kwargs). */
export interface BlockContext {
  /** The logical date the run processes. */
  executionDate: Date;
  executionPartition: string;
  pipelineUuid: string;
  pipelineRunId: number;
  blockUuid: string;
  blockRunId: number;
  /** Which item of a dynamic fan-out this is, or null. */
  dynamicBlockIndex: number | null;
  /** 1 on the first try, 2 on the first retry, ... */
  attempt: number;
  /** project < pipeline < trigger < run < runtime variables; later wins. */
  variables: Readonly<JsonObject>;
  /** The event that triggered the run (event triggers), or null. */
  event: JsonObject | null;
  secrets: BlockSecrets;
  logger: BlockLogger;
  /** Aborted when the block run is cancelled or times out; long blocks should watch it. */
  signal: AbortSignal;
}

const BLOCK = Symbol.for("kiln.block");

export interface BlockDefinition {
  readonly [BLOCK]: true;
  readonly type: BlockType;
  readonly run: (...args: unknown[]) => unknown;
}

type BlockFn<I extends unknown[], R> = (...args: [...inputs: I, ctx: BlockContext]) => R | Promise<R>;

function define(type: BlockType, run: (...args: never[]) => unknown): BlockDefinition {
  if (typeof run !== "function") throw new TypeError(`${type}(): expected a function`);
  return { [BLOCK]: true, type, run: run as (...args: unknown[]) => unknown };
}

/** A block that loads data; usually has no upstream blocks. */
export function dataLoader<I extends unknown[], R>(fn: BlockFn<I, R>): BlockDefinition {
  return define("data_loader", fn);
}

/** A block that transforms its upstream outputs. */
export function transformer<I extends unknown[], R>(fn: BlockFn<I, R>): BlockDefinition {
  return define("transformer", fn);
}

/** A block that writes its upstream outputs somewhere. */
export function dataExporter<I extends unknown[], R>(fn: BlockFn<I, R>): BlockDefinition {
  return define("data_exporter", fn);
}

/** A block polled until it returns true (or its timeout passes). */
export function sensor<I extends unknown[]>(fn: BlockFn<I, boolean>): BlockDefinition {
  return define("sensor", fn);
}

/** A block with no fixed role. */
export function custom<I extends unknown[], R>(fn: BlockFn<I, R>): BlockDefinition {
  return define("custom", fn);
}

/**
 * The block function a module exports: a helper's definition, or a plain default-exported
 * function (so a project needs no dependency on kiln to define a block). Null if neither.
 */
export function blockFunctionOf(moduleExports: unknown): ((...args: unknown[]) => unknown) | null {
  const candidate =
    moduleExports !== null && typeof moduleExports === "object" && "default" in moduleExports
      ? (moduleExports as { default: unknown }).default
      : moduleExports;
  if (typeof candidate === "function") return candidate as (...args: unknown[]) => unknown;
  if (candidate !== null && typeof candidate === "object" && BLOCK in candidate) {
    return (candidate as BlockDefinition).run;
  }
  return null;
}
