/** Background WAL checkpoints: the connection stops checkpointing on commit while the worker runs, and resumes after. */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, startCheckpointer } from "@kiln/node";

test("startCheckpointer turns the connection's autocheckpoint off, the worker keeps the WAL from growing, stop turns it back on", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-ckpt-"));
  const path = join(dir, "kiln.db");
  const client = await openDatabase(`file:${path}`);
  try {
    const stop = await startCheckpointer(client, path, 20);
    expect((await client.execute("PRAGMA wal_autocheckpoint")).rows[0]?.wal_autocheckpoint).toBe(0);
    await client.execute("CREATE TABLE t (x BLOB)");
    // ~3,000 pages written, one commit at a time, with pauses that let the worker checkpoint:
    // SQLite reuses the WAL from its start after a complete checkpoint, so it stays far below that
    for (let i = 0; i < 60; i++) {
      await client.batch(Array.from({ length: 25 }, () => ({ sql: "INSERT INTO t VALUES (randomblob(8000))", args: [] })), "write");
      await Bun.sleep(25);
    }
    const walPages = statSync(`${path}-wal`).size / 4096;
    expect(walPages).toBeLessThan(1500);
    await stop();
    expect((await client.execute("PRAGMA wal_autocheckpoint")).rows[0]?.wal_autocheckpoint).toBe(1000);
  } finally {
    client.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
