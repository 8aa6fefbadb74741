/**
 * Runs in a Worker: checkpoints the WAL of one database file every interval on its own
 * connection, so the fsyncs a checkpoint needs never block the main thread's event loop.
 */
import Database from "libsql";

declare const self: { onmessage: ((event: MessageEvent) => void) | null; postMessage(message: unknown): void };

let timer: ReturnType<typeof setInterval> | null = null;
let db: Database.Database | null = null;

self.onmessage = (event: MessageEvent) => {
  const message = event.data as { path: string; intervalMs: number; sql: string } | "stop";
  if (message === "stop") {
    if (timer) clearInterval(timer);
    db?.close();
    db = null;
    self.postMessage("stopped");
    return;
  }
  db = new Database(message.path, { timeout: 10_000 } as Database.Options);
  timer = setInterval(() => {
    try {
      // a PASSIVE checkpoint (the store's statement): copies what it can without waiting on readers or writers
      db?.prepare(message.sql).all();
    } catch {
      // busy or locked: the next interval tries again
    }
  }, message.intervalMs);
};
