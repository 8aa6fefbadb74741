/**
 * Starting a warm block process and talking to it: its stdin, its output lines, its end. On Bun
 * through Bun.spawn, elsewhere through node:child_process. The difference matters because kiln
 * starts one for every block run and the start blocks kiln's event loop while the child execs:
 * node:child_process's spawn holds it some 2-3 ms on Bun (the single largest cost of a block run
 * in kiln's own process, by CPU profile), Bun.spawn about 1 ms. Either way the process gets a
 * process group of its own (cancel and timeout kill the group) and does not keep kiln's event
 * loop alive until it is claimed (ref).
 */
import { spawn } from "node:child_process";
import { eachLine } from "@kiln/node/lines";

/** A started warm process. */
export interface WorkerProcess {
  readonly pid: number | undefined;
  /** Its stdin is still open for writing. */
  readonly writable: boolean;
  /** Writes to its stdin (and ends it, with `end`); resolves once written, or once it failed because the process died first. */
  write(data: string, end?: boolean): Promise<void>;
  /** Ends its stdin: a waiting warm process exits. */
  end(): void;
  /** Keeps kiln's event loop alive while it runs (a claimed process). */
  ref(): void;
  /** Lets kiln exit while it waits (a spare). */
  unref(): void;
}

/** What the caller hears of the process. */
export interface WorkerProcessEvents {
  line(stream: "stdout" | "stderr", line: string): void;
  /** It could not be started; nothing else follows. */
  error(error: Error): void;
  /** It exited and its output has been read to the end. */
  close(code: number | null, signal: NodeJS.Signals | null): void;
}

export interface WorkerProcessOptions {
  cwd: string;
  env: Record<string, string | undefined>;
}

interface BunSubprocess {
  readonly pid: number;
  readonly stdin: { write(data: string): number; flush(): number | Promise<number>; end(): number | Promise<number> };
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly exited: Promise<number>;
  readonly signalCode: string | null;
  readonly exitCode: number | null;
  ref(): void;
  unref(): void;
}

interface BunSpawner {
  spawn(command: string[], options: { cwd: string; env: Record<string, string | undefined>; stdin: "pipe"; stdout: "pipe"; stderr: "pipe"; detached: boolean }): BunSubprocess;
}

/** Starts `command` as a warm process: stdin, stdout and stderr piped, in a process group of its own, unref'd. */
export function startWorkerProcess(command: string[], options: WorkerProcessOptions, events: WorkerProcessEvents): WorkerProcess {
  const { Bun } = globalThis as { Bun?: BunSpawner };
  return Bun ? bunWorker(Bun, command, options, events) : nodeWorker(command, options, events);
}

/** Calls `onLine` for each line of `stream` (the rest at its end); resolves at its end. */
async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for await (const chunk of stream) {
      buffer += decoder.decode(chunk, { stream: true });
      let at: number;
      while ((at = buffer.indexOf("\n")) >= 0) {
        onLine(buffer.slice(0, at));
        buffer = buffer.slice(at + 1);
      }
    }
  } catch {
    // the pipe broke with the process: what was read is all there is
  }
  buffer += decoder.decode();
  if (buffer) onLine(buffer);
}

function bunWorker(bun: BunSpawner, command: string[], options: WorkerProcessOptions, events: WorkerProcessEvents): WorkerProcess {
  let child: BunSubprocess;
  try {
    child = bun.spawn(command, { cwd: options.cwd, env: options.env, stdin: "pipe", stdout: "pipe", stderr: "pipe", detached: true });
  } catch (error) {
    // as node:child_process reports it: after the caller has the handle
    queueMicrotask(() => events.error(error instanceof Error ? error : new Error(String(error))));
    return { pid: undefined, writable: false, write: async () => {}, end: () => {}, ref: () => {}, unref: () => {} };
  }
  let open = true;
  child.unref();
  const outputs = Promise.all([readLines(child.stdout, (line) => events.line("stdout", line)), readLines(child.stderr, (line) => events.line("stderr", line))]);
  void Promise.all([child.exited, outputs]).then(([code]) => {
    open = false;
    const signal = child.signalCode as NodeJS.Signals | null;
    events.close(signal ? null : code, signal);
  });
  const close = async () => {
    if (!open) return;
    open = false;
    try {
      await child.stdin.end();
    } catch {
      // it died first: its exit tells what happened
    }
  };
  return {
    pid: child.pid,
    get writable() {
      return open;
    },
    async write(data, end = false) {
      if (!open) return;
      try {
        child.stdin.write(data);
        await child.stdin.flush();
      } catch {
        open = false;
        return;
      }
      if (end) await close();
    },
    end: () => void close(),
    ref: () => child.ref(),
    unref: () => child.unref(),
  };
}

function nodeWorker(command: string[], options: WorkerProcessOptions, events: WorkerProcessEvents): WorkerProcess {
  const [program, ...args] = command as [string, ...string[]];
  const child = spawn(program, args, { cwd: options.cwd, env: options.env, stdio: ["pipe", "pipe", "pipe"], detached: true });
  const stdin = child.stdin!;
  stdin.on("error", () => {});
  // a spare does not keep kiln's event loop alive; a claimed worker does (ref on claim)
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
  eachLine(child.stdout, (line) => events.line("stdout", line));
  eachLine(child.stderr, (line) => events.line("stderr", line));
  child.once("error", (error) => events.error(error));
  child.once("close", (code, signal) => events.close(code, signal));
  return {
    get pid() {
      return child.pid;
    },
    get writable() {
      return !stdin.destroyed && !stdin.writableEnded;
    },
    write: (data, end = false) => writeToStdin(stdin, data, end),
    end: () => stdin.end(),
    ref: () => child.ref(),
    unref: () => child.unref(),
  };
}

/** Writes `data` to a child's stdin (and ends it, with `end`); resolves once written, or once the write failed because the child died first (its exit tells what happened). */
export function writeToStdin(stdin: NodeJS.WritableStream, data: string, end: boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stdin.off("error", done);
      resolve();
    };
    stdin.once("error", done);
    if (end) stdin.end(data, done);
    else stdin.write(data, done);
  });
}
