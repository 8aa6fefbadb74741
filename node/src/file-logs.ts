/** The default log sink and its reader: one file per block run under the project's `.logs/` folder. */
import { appendPrivateFile, makePrivateDir } from "./private-files.ts";
import { open } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { completeUtf8, logPath, type LogChunk, type LogReader, type LogSink } from "@kiln/core";

/** Appends block-run log lines to `.logs/pipelines/<pipeline>/<partition>/<block>.log`. */
export function fileLogSink(projectRoot: string): LogSink {
  const made = new Set<string>();
  return {
    append(pipelineUuid, partition, blockUuid, text) {
      const path = join(projectRoot, logPath(pipelineUuid, partition, blockUuid));
      const dir = dirname(path);
      if (!made.has(dir)) {
        makePrivateDir(dir);
        made.add(dir);
      }
      // synchronous appends keep lines in order without a queue per file; lines are small
      appendPrivateFile(path, text);
    },
  };
}

const NEWLINE = 0x0a;

/** Reads the files fileLogSink writes, by byte offset. */
export function fileLogReader(projectRoot: string): LogReader {
  const logsRoot = resolve(projectRoot, ".logs") + sep;
  const decoder = new TextDecoder();
  return {
    async read(pipelineUuid, partition, blockUuid, fromOffset, maxBytes): Promise<LogChunk> {
      const none: LogChunk = { text: "", nextOffset: fromOffset };
      const path = resolve(projectRoot, logPath(pipelineUuid, partition, blockUuid));
      // names come from the database; one with ".." must not read outside .logs/
      if (!path.startsWith(logsRoot) || maxBytes < 1 || fromOffset < 0) return none;
      let file;
      try {
        file = await open(path, "r");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return none;
        throw error;
      }
      try {
        const buffer = new Uint8Array(maxBytes);
        const { bytesRead } = await file.read(buffer, 0, maxBytes, fromOffset);
        const bytes = buffer.subarray(0, bytesRead);
        const lastNewline = bytes.lastIndexOf(NEWLINE);
        let end = lastNewline + 1;
        if (lastNewline < 0) {
          // a line still being written: wait for its end; one longer than maxBytes: cut it, at a
          // character boundary (never inside a UTF-8 sequence)
          if (bytesRead < maxBytes) return none;
          end = completeUtf8(bytes);
        }
        return { text: decoder.decode(bytes.subarray(0, end)), nextOffset: fromOffset + end };
      } finally {
        await file.close();
      }
    },
  };
}

