/**
 * Background WAL checkpoints for long-lived processes (kiln start). SQLite's automatic
 * checkpoint runs inside whichever commit crosses 1,000 WAL pages, and its fsyncs then land on
 * that commit: measured here, one API trigger in fifty took 13-16 ms instead of ~1 ms. With this,
 * the process's connection never checkpoints; a Worker with its own connection does, every second.
 */
import { PASSIVE_CHECKPOINT_SQL, setAutoCheckpoint, type SqlClient } from "@kiln/core/store";

/** Moves checkpoints of the `file:` database at `path` off `client`; returns a stop function. */
export async function startCheckpointer(client: SqlClient, path: string, intervalMs = 1000): Promise<() => Promise<void>> {
  if (typeof Worker === "undefined" || path === ":memory:") return async () => {};
  // a module worker: Deno accepts no other kind (Bun takes both); Node 20 has no Worker global and goes without
  const worker = new Worker(new URL("./checkpoint-worker.ts", import.meta.url).href, { type: "module" });
  // the worker imports no kiln module: it is handed the statement
  worker.postMessage({ path, intervalMs, sql: PASSIVE_CHECKPOINT_SQL });
  (worker as unknown as { unref?: () => void }).unref?.();
  await setAutoCheckpoint(client, 0);
  return async () => {
    const stopped = new Promise<void>((resolve) => worker.addEventListener("message", () => resolve(), { once: true }));
    worker.postMessage("stop");
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 2000))]);
    worker.terminate();
    // this connection checkpoints again on its own (and at close)
    await setAutoCheckpoint(client, 1000).catch(() => {});
  };
}
