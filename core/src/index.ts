/**
 * @kiln/core for block authors: the block helpers (dataLoader, transformer, dataExporter, ...),
 * the BlockContext they are called with, the domain types and errors, the executor contract,
 * and triggerPipeline. Web-standard APIs only: no node:*, bun:* or Deno here.
 *
 * The rest of kiln is under subpaths, one per area, as hono does: `@kiln/core/store`,
 * `/engine`, `/api`, `/auth`, `/project`, `/schedule`, `/backfill`, `/events`, `/notify`,
 * `/runs`, `/output-store`, `/runtime`, `/bounds`, `/conformance`.
 */
export * from "./domain.ts";
export * from "./errors.ts";
export * from "./clock.ts";
export * from "./blocks.ts";
export * from "./block-call.ts";
export * from "./block-runtime.ts";
export * from "./executor.ts";
export * from "./outputs.ts";
export * from "./logs.ts";
export * from "./variables.ts";
export * from "./api/trigger-pipeline.ts";
