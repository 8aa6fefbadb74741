/**
 * The block authoring API: a block module default-exports a function made with one of these
 * helpers. The function receives its upstream blocks' outputs, in upstream_blocks order, then
 * the context; it returns its output (JSON-serialisable) or throws.
 */
import type { TriggerPipelineOptions } from "./api/trigger-pipeline.ts";
import type { JsonObject, PipelineRun } from "./domain.ts";
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
  /**
   * Runs another pipeline of the project (Mage's trigger_pipeline): creates its run through
   * an api trigger and, with `checkStatus`, waits for it to end (a scheduler must be running to
   * start it). Waiting stops when this block run is cancelled.
   */
  triggerPipeline(pipelineUuid: string, options?: TriggerPipelineOptions): Promise<PipelineRun>;
}

const BLOCK = Symbol.for("kiln.block");

export interface BlockDefinition {
  readonly [BLOCK]: true;
  readonly type: BlockType;
  readonly run: (...args: unknown[]) => unknown;
}

type Out<R> = R | Promise<R>;

/**
 * A block helper: takes a function of the upstream outputs (in upstream_blocks order) and the
 * context. Overloads per arity so that TypeScript infers `ctx` without an annotation.
 */
export interface BlockHelper<R> {
  (fn: (ctx: BlockContext) => Out<R>): BlockDefinition;
  <A>(fn: (a: A, ctx: BlockContext) => Out<R>): BlockDefinition;
  <A, B>(fn: (a: A, b: B, ctx: BlockContext) => Out<R>): BlockDefinition;
  <A, B, C>(fn: (a: A, b: B, c: C, ctx: BlockContext) => Out<R>): BlockDefinition;
  <A, B, C, D>(fn: (a: A, b: B, c: C, d: D, ctx: BlockContext) => Out<R>): BlockDefinition;
}

function helper<R>(type: BlockType): BlockHelper<R> {
  return ((run: (...args: never[]) => unknown): BlockDefinition => {
    if (typeof run !== "function") throw new TypeError(`${type}(): expected a function`);
    return { [BLOCK]: true, type, run: run as (...args: unknown[]) => unknown };
  }) as BlockHelper<R>;
}

/** A block that loads data; usually has no upstream blocks. */
export const dataLoader: BlockHelper<unknown> = helper("data_loader");

/** A block that transforms its upstream outputs. */
export const transformer: BlockHelper<unknown> = helper("transformer");

/** A block that writes its upstream outputs somewhere. */
export const dataExporter: BlockHelper<unknown> = helper("data_exporter");

/** A block polled until it returns true (or its timeout passes). */
export const sensor: BlockHelper<boolean> = helper("sensor");

/** A block with no fixed role. */
export const custom: BlockHelper<unknown> = helper("custom");

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
