/**
 * A block run's result file: where its process records the outcome (and a thin process the
 * output) for a kiln that was not watching, and where kiln reads it back. The parent side and
 * full block processes use these; a thin process on Bun writes its file with Bun.write instead
 * (cli/src/commands/block-process.ts), without loading node:fs.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { RecordedResult } from "./warm-protocol.ts";

/** Records a block run's outcome for a kiln that was not watching (atomically: a reader sees all of it or nothing). */
export function writeResult(path: string, result: RecordedResult): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(`${path}.tmp`, JSON.stringify(result), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/** The outcome a block process recorded, or null if it left none (it crashed, or was killed). */
export function readResult(path: string): RecordedResult | null {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as { state?: unknown; error?: unknown; output?: unknown };
    if (parsed.state === "completed") return typeof parsed.output === "string" ? { state: "completed", output: parsed.output } : { state: "completed" };
    if (parsed.state === "failed") return { state: "failed", error: String(parsed.error ?? "the block failed") };
    return null;
  } catch {
    return null;
  }
}
