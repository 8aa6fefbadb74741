/**
 * The lines of this process's stdin, read only while one is awaited: between reads nothing holds
 * the event loop open, so a block whose promise can never settle still lets its process see that
 * (beforeExit) instead of hanging on a pending read.
 */

/** Reads one line at a time; null at stdin's end. */
export interface StdinLines {
  next(): Promise<string | null>;
}

interface BunStdin {
  stdin: { stream(): ReadableStream<Uint8Array> };
}

/**
 * Bun's own stdin stream: process.stdin costs Bun some 25 ms of start-up CPU, this about 3. Made
 * at the first read: a thin block process that asks kiln nothing never reads past its first line.
 */
function bunLines(bun: BunStdin): StdinLines {
  let stream: ReadableStream<Uint8Array> | null = null;
  const decoder = new TextDecoder();
  let buffer = "";
  let ended = false;
  return {
    async next() {
      for (;;) {
        const end = buffer.indexOf("\n");
        if (end >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 1);
          return line;
        }
        if (ended) {
          const rest = buffer;
          buffer = "";
          return rest.trim() === "" ? null : rest;
        }
        // a reader holds the event loop open while stdin is open, even between reads (one per
        // read, then), and a read after the first does not hold it at all: a timer does
        stream ??= bun.stdin.stream();
        const reader = stream.getReader();
        const keepAlive = setInterval(() => {}, 60_000);
        const { value, done } = await reader.read().finally(() => {
          clearInterval(keepAlive);
          reader.releaseLock();
        });
        if (done) ended = true;
        else buffer += decoder.decode(value, { stream: true });
      }
    },
  };
}

/** process.stdin, paused between lines (Node, Deno). */
function nodeLines(): StdinLines {
  let buffer = "";
  let ended = false;
  const lines: string[] = [];
  const waiting: Array<(line: string | null) => void> = [];
  // Deno's stdin does not keep the event loop alive: a spare waiting for its block run would end
  // with "a promise that never settled" (exit 70). A timer holds the loop open while a line is awaited.
  let keepAlive: ReturnType<typeof setInterval> | null = null;
  const deliver = () => {
    while (waiting.length > 0 && (lines.length > 0 || ended)) waiting.shift()!(lines.shift() ?? null);
    if (waiting.length === 0) {
      process.stdin.pause();
      if (keepAlive !== null) clearInterval(keepAlive);
      keepAlive = null;
    }
  };
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    buffer += chunk;
    for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
      lines.push(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
    }
    deliver();
  });
  process.stdin.on("end", () => {
    ended = true;
    if (buffer.trim() !== "") lines.push(buffer);
    buffer = "";
    deliver();
  });
  process.stdin.pause();
  return {
    next: () =>
      new Promise((resolveLine) => {
        waiting.push(resolveLine);
        if (lines.length > 0 || ended) deliver();
        else {
          keepAlive ??= setInterval(() => {}, 60_000);
          process.stdin.resume();
        }
      }),
  };
}

/** The lines of stdin (one reader per process). */
export function stdinLines(): StdinLines {
  const { Bun } = globalThis as { Bun?: BunStdin };
  return Bun ? bunLines(Bun) : nodeLines();
}
