/** The default log sink: one file per block run under the project's `.logs/` folder. */
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { logPath, type LogSink } from "@kiln/core";

/** Appends block-run log lines to `.logs/pipelines/<pipeline>/<partition>/<block>.log`. */
export function fileLogSink(projectRoot: string): LogSink {
  const made = new Set<string>();
  return {
    append(pipelineUuid, partition, blockUuid, text) {
      const path = join(projectRoot, logPath(pipelineUuid, partition, blockUuid));
      const dir = dirname(path);
      if (!made.has(dir)) {
        mkdirSync(dir, { recursive: true });
        made.add(dir);
      }
      // synchronous appends keep lines in order without a queue per file; lines are small
      appendFileSync(path, text);
    },
  };
}
