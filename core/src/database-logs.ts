/**
 * Block logs kept in the database, for hosts with no disk (Cloudflare Workers): the sink
 * buffers appended lines and writes them in one batch every flush interval (a statement per
 * block run, not per line, so a chatty block costs few queries), and the reader serves them by
 * byte offset, as the file reader does, so the log routes and the UI's live log work unchanged.
 */
import { completeUtf8, type LogChunk, type LogReader, type LogSink } from "./logs.ts";
import type { SqlClient } from "./store/sql-client.ts";
import { appendBlockLogStatement, blockLogPieces, type BlockLogKey } from "./store/block-logs.ts";
import { messageOf } from "./errors.ts";

/** A log sink whose writes are buffered: flush() writes what is buffered and resolves once it is stored. */
export interface BufferedLogSink extends LogSink {
  flush(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NEWLINE = 0x0a;

/** Writes block logs to the database, at most every `flushMs` (and at flush()). */
export function databaseLogSink(client: SqlClient, options: { flushMs?: number; now?: () => number } = {}): BufferedLogSink {
  const flushMs = options.flushMs ?? 250;
  const now = options.now ?? Date.now;
  let buffered = new Map<string, { key: BlockLogKey; text: string }>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let writing: Promise<void> = Promise.resolve();

  const flush = (): Promise<void> => {
    if (timer) clearTimeout(timer);
    timer = null;
    const pending = buffered;
    buffered = new Map();
    // flushes are chained so a block run's appends land in the order they were made
    writing = writing.then(async () => {
      if (pending.size === 0) return;
      const at = now();
      const statements = [...pending.values()].map(({ key, text }) => appendBlockLogStatement(key, text, encoder.encode(text).length, at));
      try {
        await client.batch(statements, "write");
      } catch (error) {
        // a log write must never fail the block run it describes; say so where the Worker's log shows it
        console.error(`kiln: ${pending.size} block log append(s) could not be stored: ${messageOf(error)}`);
      }
    });
    return writing;
  };

  return {
    append(pipelineUuid, partition, blockUuid, text) {
      const id = `${pipelineUuid}\u0000${partition}\u0000${blockUuid}`;
      const entry = buffered.get(id);
      if (entry) entry.text += text;
      else buffered.set(id, { key: { pipelineUuid, partition, blockUuid }, text });
      timer ??= setTimeout(() => void flush(), flushMs);
    },
    flush,
  };
}

/** Reads the logs databaseLogSink writes, by byte offset (the LogReader contract). */
export function databaseLogReader(client: SqlClient): LogReader {
  return {
    async read(pipelineUuid, partition, blockUuid, fromOffset, maxBytes): Promise<LogChunk> {
      const none: LogChunk = { text: "", nextOffset: fromOffset };
      if (maxBytes < 1 || fromOffset < 0) return none;
      const pieces = await blockLogPieces(client, { pipelineUuid, partition, blockUuid }, fromOffset, maxBytes);
      if (pieces.length === 0) return none;
      const parts = pieces.map((p) => encoder.encode(p.text));
      const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const part of parts) {
        joined.set(part, at);
        at += part.length;
      }
      const start = Math.max(0, fromOffset - pieces[0]!.startOffset);
      const bytes = joined.subarray(start, start + maxBytes);
      const lastNewline = bytes.lastIndexOf(NEWLINE);
      let end = lastNewline + 1;
      if (lastNewline < 0) {
        if (bytes.length < maxBytes) return none;
        end = completeUtf8(bytes);
      }
      return { text: decoder.decode(bytes.subarray(0, end)), nextOffset: fromOffset + end };
    },
  };
}

