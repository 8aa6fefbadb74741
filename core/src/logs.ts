/** Block logs: one file per block run under `.logs/`, written through a sink. */
import type { BlockLogger } from "./blocks.ts";
import type { JsonObject } from "./domain.ts";

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
