/**
 * The local folder's outputs with small ones kept as database rows (kiln.yaml
 * `output_store.inline_max_bytes`, like Airflow's XCom): an in-process block run's output of at
 * most that many bytes is committed by the run engine as a `block_outputs` row in the very write
 * that records the block run's completion, which saves the directory and file every block run
 * made, and makes the output durable exactly when its completion is. Everything else (larger
 * outputs, a block process's) stays a file where Mage and the README's `cat` expect it.
 *
 * Readers take the row first, then the file. The engine keeps that order honest: a completion
 * whose output went to a file deletes the block's row in the same write, so a row is never older
 * than the file it shadows; a newer row shadows an older file, and is read first.
 */
import type { OutputStore } from "../outputs.ts";
import { getBlockOutput } from "../store/block-outputs.ts";
import type { SqlClient } from "../store/sql-client.ts";

/** An output store over `files` that reads a block's row in `client`'s block_outputs first, and tells the engine to write small outputs there. */
export function inlineOutputStore(client: SqlClient, files: OutputStore, maxBytes: number): OutputStore {
  return {
    inline: { maxBytes },
    write: (pipelineUuid, partition, blockUuid, value) => files.write(pipelineUuid, partition, blockUuid, value),
    async read(pipelineUuid, partition, blockUuid) {
      const json = await getBlockOutput(client, { pipelineUuid, executionPartition: partition, blockUuid });
      if (json !== null) return JSON.parse(json) as unknown;
      return files.read(pipelineUuid, partition, blockUuid);
    },
  };
}

