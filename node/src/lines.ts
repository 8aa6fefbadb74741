/** Splitting a child process's output stream into lines, for the executors and the Python host. */

/** Calls `onLine` for each complete line of `stream` (and the rest at its end), then `onEnd`. */
export function eachLine(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void, onEnd?: () => void): void {
  if (!stream) return;
  let buffer = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buffer += chunk;
    let at: number;
    while ((at = buffer.indexOf("\n")) >= 0) {
      onLine(buffer.slice(0, at));
      buffer = buffer.slice(at + 1);
    }
  });
  stream.on("end", () => {
    if (buffer) onLine(buffer);
    buffer = "";
    onEnd?.();
  });
}
