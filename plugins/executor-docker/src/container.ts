/**
 * Reading a block run's container back: its state as a kiln ExecutionStatus, and its output
 * (Docker's multiplexed log stream) as lines.
 */
import type { ExecutionStatus } from "@kiln/core";

/** Appended to a container's name when kiln cancels it, before stopping it: its exit code then means nothing. */
export const CANCELLED_SUFFIX = "--kiln-cancelled";

/** The parts of Docker's container inspect answer that say how the container ended. */
export interface ContainerStateView {
  Status?: string;
  Running?: boolean;
  ExitCode?: number;
  OOMKilled?: boolean;
  Error?: string;
}

/**
 * A container's state as a block run's status, before any detail from its log: running while it
 * is created, running, paused or restarting; completed on exit code 0; failed with the exit code
 * (and OOMKilled) otherwise; cancelled when kiln renamed it to cancel it.
 */
export function statusOfContainer(name: string, state: ContainerStateView): ExecutionStatus {
  if (name.replace(/^\//, "").endsWith(CANCELLED_SUFFIX)) return { state: "cancelled" };
  const status = (state.Status ?? "").toLowerCase();
  if (status === "removing") return { state: "cancelled" };
  if (state.Running || status === "running" || status === "paused" || status === "restarting") return { state: "running" };
  if (status === "created" || status === "configured") {
    // created but not started: starting, unless the engine gave up starting it
    return state.Error ? { state: "failed", error: `the container did not start: ${state.Error}` } : { state: "running" };
  }
  const exitCode = state.ExitCode ?? -1;
  if (state.OOMKilled) {
    return { state: "failed", error: `killed: out of memory (OOMKilled), exit code ${exitCode}`, metrics: { exit_code: exitCode, oom_killed: true } };
  }
  if (status === "dead") return { state: "failed", error: `the container is dead${state.Error ? `: ${state.Error}` : ""}`, metrics: { exit_code: exitCode } };
  if (exitCode === 0) return { state: "completed", metrics: { exit_code: 0 } };
  const detail = state.Error ? ` (${state.Error})` : "";
  return { state: "failed", error: `exit code ${exitCode}${detail}`, metrics: { exit_code: exitCode } };
}

/** One piece of a container's output: which stream, and its text. */
export interface OutputFrame {
  stream: "stdout" | "stderr";
  text: string;
}

/**
 * Splits Docker's multiplexed log stream (a container without a TTY): frames of an 8-byte header
 * (stream 1 stdout or 2 stderr, three zero bytes, a big-endian length) then that many bytes.
 * Output that does not start with such a header (a TTY container) is stdout as it is.
 */
export function demuxOutput(bytes: Uint8Array): OutputFrame[] {
  const decoder = new TextDecoder();
  const looksMultiplexed = bytes.length >= 8 && (bytes[0] === 1 || bytes[0] === 2 || bytes[0] === 0) && bytes[1] === 0 && bytes[2] === 0 && bytes[3] === 0;
  if (!looksMultiplexed) return bytes.length > 0 ? [{ stream: "stdout", text: decoder.decode(bytes) }] : [];
  const frames: OutputFrame[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // bytes of each stream are decoded separately, so a character split across frames stays whole
  const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  let offset = 0;
  while (offset + 8 <= bytes.length) {
    const stream = bytes[offset] === 2 ? "stderr" : "stdout";
    const size = view.getUint32(offset + 4);
    const end = Math.min(offset + 8 + size, bytes.length);
    frames.push({ stream, text: decoders[stream].decode(bytes.subarray(offset + 8, end), { stream: true }) });
    offset = end;
  }
  return frames;
}

/** The complete lines of a container's output, in the order they were written (stdout and stderr interleaved). */
export function outputLines(frames: OutputFrame[]): string[] {
  const lines: string[] = [];
  const partial = { stdout: "", stderr: "" };
  for (const frame of frames) {
    const text = partial[frame.stream] + frame.text;
    const parts = text.split("\n");
    partial[frame.stream] = parts.pop() ?? "";
    for (const line of parts) lines.push(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
  // the last line of a stream that ended without a newline is still a line
  for (const rest of [partial.stdout, partial.stderr]) if (rest !== "") lines.push(rest);
  return lines;
}

/**
 * Why a container failed, from its stderr: the block's own message (the last line kiln run-block
 * marks with `mark`), else the last line it wrote there (a usage error, a crash before the block ran).
 */
export function failureDetail(frames: OutputFrame[], mark: string): string | null {
  const stderr = outputLines(frames.filter((f) => f.stream === "stderr"));
  for (let i = stderr.length - 1; i >= 0; i--) {
    const line = stderr[i] as string;
    const at = line.indexOf(mark);
    if (at >= 0) return line.slice(at + mark.length).trim() || null;
  }
  const last = stderr.findLast((line) => line.trim() !== "");
  return last ? last.trim().slice(0, 500) : null;
}
