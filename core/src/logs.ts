/** Block logs: one file per block run under `.logs/`, written through a sink. */
import type { BlockLogger } from "./blocks.ts";
import type { JsonObject } from "./domain.ts";
import { utf8Length } from "./outputs.ts";

export interface LogSink {
  /** Appends complete lines (each ending in "\n") to a block run's log. */
  append(pipelineUuid: string, partition: string, blockUuid: string, text: string): void;
}

/** Project-relative path of a block run's log, as in Mage. */
export function logPath(pipelineUuid: string, partition: string, blockUuid: string): string {
  return `.logs/pipelines/${pipelineUuid}/${partition}/${blockUuid}.log`;
}

/** Formats one log line: ISO time, level, message, then fields as JSON. */
export function formatLogLine(at: number, level: string, message: string, fields?: JsonObject): string {
  const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : "";
  return `${new Date(at).toISOString()} ${level.toUpperCase()} ${message}${extra}\n`;
}

/** A logger that writes a block run's lines through a sink. */
export function createBlockLogger(
  sink: LogSink,
  now: () => number,
  where: { pipelineUuid: string; partition: string; blockUuid: string },
): BlockLogger {
  const write = (level: string) => (message: string, fields?: JsonObject) =>
    sink.append(where.pipelineUuid, where.partition, where.blockUuid, formatLogLine(now(), level, message, fields));
  return { info: write("info"), warn: write("warn"), error: write("error") };
}

/** A stretch of a block run's log read back: complete lines, and the byte offset to read from next. */
export interface LogChunk {
  text: string;
  nextOffset: number;
}

/**
 * Reads block-run logs back by byte offset, so a page or a live stream resumes exactly where it
 * stopped without rereading the file; the reading side of LogSink.
 */
export interface LogReader {
  /**
   * Complete lines of a block run's log from byte `fromOffset`, about `maxBytes` at most (a
   * single longer line comes cut at `maxBytes`). A line still being written is left for a later
   * read; an absent log reads as empty.
   */
  read(pipelineUuid: string, partition: string, blockUuid: string, fromOffset: number, maxBytes: number): Promise<LogChunk>;
}

/** One log line parsed back from the format formatLogLine writes. */
export interface ParsedLogLine {
  /** Epoch milliseconds; null for a line not in kiln's format (a stack trace's continuation). */
  at: number | null;
  /** Lower case: info, warn, error, stdout, stderr; null when the line has none. */
  level: string | null;
  message: string;
  fields: JsonObject | null;
}

const LINE_HEAD = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ([A-Z]+) ?/;

/** Parses a line written by formatLogLine (without its "\n"); any other line is kept whole as the message. */
export function parseLogLine(line: string): ParsedLogLine {
  const head = LINE_HEAD.exec(line);
  const at = head ? Date.parse(head[1] as string) : NaN;
  if (!head || !Number.isFinite(at)) return { at: null, level: null, message: line, fields: null };
  const rest = line.slice(head[0].length);
  // the fields are a JSON object after the last message space; the longest suffix that parses
  // as one wins, so a message holding braces of its own stays whole
  for (let i = rest.indexOf(" {"); i >= 0; i = rest.indexOf(" {", i + 1)) {
    const fields = parseObject(rest.slice(i + 1));
    if (fields) return { at, level: (head[2] as string).toLowerCase(), message: rest.slice(0, i), fields };
  }
  return { at, level: (head[2] as string).toLowerCase(), message: rest, fields: null };
}

function parseObject(text: string): JsonObject | null {
  if (!text.endsWith("}")) return null;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as JsonObject) : null;
  } catch {
    return null;
  }
}

/** The lines of a chunk that starts at byte `fromOffset`, each with the byte offset just after it (its resume point). */
export function splitLogChunk(chunk: LogChunk, fromOffset: number): Array<{ line: string; endOffset: number }> {
  const lines: Array<{ line: string; endOffset: number }> = [];
  let offset = fromOffset;
  let start = 0;
  const text = chunk.text;
  while (start < text.length) {
    const newline = text.indexOf("\n", start);
    const end = newline < 0 ? text.length : newline;
    const line = text.slice(start, end);
    offset += utf8Length(line) + (newline < 0 ? 0 : 1);
    lines.push({ line: line.endsWith("\r") ? line.slice(0, -1) : line, endOffset: offset });
    start = end + 1;
  }
  // the reader's offset is exact for the whole chunk; within it, offsets drift only where the log
  // held invalid UTF-8 (decoded as U+FFFD, whose length differs), which kiln's writers never produce
  const last = lines[lines.length - 1];
  if (last) last.endOffset = chunk.nextOffset;
  return lines;
}


/**
 * The length of the longest prefix of `bytes` that ends on a whole UTF-8 character: a LogReader
 * cuts a chunk there, so a character split across two reads is never decoded in halves.
 */
export function completeUtf8(bytes: Uint8Array): number {
  let lead = bytes.length - 1;
  while (lead > 0 && ((bytes[lead] ?? 0) & 0xc0) === 0x80) lead--;
  const first = bytes[lead] ?? 0;
  const size = first < 0x80 ? 1 : first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
  // nothing whole to give (garbage bytes): give them all rather than stall the reader
  if (lead + size <= bytes.length || lead === 0) return bytes.length;
  return lead;
}
