/**
 * Block outputs in the project's database (kiln.yaml `output_store: {type: database}`): every
 * executor that reaches the database reaches the outputs too, with no other service to run. A
 * size limit keeps one large output from bloating every replica and backup of the database.
 */
import { systemClock, type Clock } from "../clock.ts";
import { OutputMissingError, outputPath, type OutputStore } from "../outputs.ts";
import { getBlockOutput, putBlockOutput } from "../store/block-outputs.ts";
import type { SqlClient } from "../store/sql-client.ts";
import { encodeBlockOutput } from "./encode.ts";

/** Raised when a block's output is larger than the database output store accepts. */
export class OutputTooLargeError extends Error {
  constructor(
    readonly pipelineUuid: string,
    readonly executionPartition: string,
    readonly blockUuid: string,
    readonly sizeBytes: number,
    readonly maxBytes: number,
  ) {
    super(
      `block "${blockUuid}" of pipeline "${pipelineUuid}" (partition ${executionPartition}) returned an output of ` +
        `${sizeBytes} bytes as JSON, over output_store.max_bytes (${maxBytes}) in kiln.yaml: raise max_bytes, ` +
        "or keep large outputs in object storage with output_store: {type: s3, ...}",
    );
    this.name = "OutputTooLargeError";
  }
}

export interface DatabaseOutputStoreOptions {
  /** The largest output accepted, in bytes of its UTF-8 JSON (kiln.yaml `output_store.max_bytes`). */
  maxBytes: number;
  clock?: Clock;
}

const utf8 = new TextEncoder();

/** An output store over the `block_outputs` table of a migrated kiln database. */
export function databaseOutputStore(client: SqlClient, options: DatabaseOutputStoreOptions): OutputStore {
  const clock = options.clock ?? systemClock;
  return {
    async write(pipelineUuid, partition, blockUuid, value) {
      const json = encodeBlockOutput(pipelineUuid, blockUuid, value);
      const size = utf8.encode(json).byteLength;
      if (size > options.maxBytes) throw new OutputTooLargeError(pipelineUuid, partition, blockUuid, size, options.maxBytes);
      await putBlockOutput(client, { pipelineUuid, executionPartition: partition, blockUuid }, json, size, clock.now());
    },
    async read(pipelineUuid, partition, blockUuid) {
      const json = await getBlockOutput(client, { pipelineUuid, executionPartition: partition, blockUuid });
      if (json === null) throw new OutputMissingError(outputPath(pipelineUuid, partition, blockUuid));
      return JSON.parse(json) as unknown;
    },
  };
}
