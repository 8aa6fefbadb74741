/** Applies pending migrations, one transaction each; safe to run from several processes at once. */
import type { SqlClient } from "./sql-client.ts";
import { MIGRATIONS, type Migration } from "./migrations/index.ts";

async function appliedIds(client: SqlClient): Promise<Set<number>> {
  await client.execute(
    "CREATE TABLE IF NOT EXISTS migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
  );
  const rs = await client.execute("SELECT id FROM migrations");
  return new Set(rs.rows.map((r) => Number(r.id)));
}

/** Brings the schema up to date; returns the ids of the migrations this call applied. */
export async function migrate(client: SqlClient, migrations: Migration[] = MIGRATIONS, now = Date.now()): Promise<number[]> {
  const applied: number[] = [];
  let done = await appliedIds(client);
  for (const migration of migrations) {
    if (done.has(migration.id)) continue;
    try {
      await client.batch(
        [
          ...migration.statements,
          { sql: "INSERT INTO migrations (id, name, applied_at) VALUES (?, ?, ?)", args: [migration.id, migration.name, now] },
        ],
        "write",
      );
      applied.push(migration.id);
    } catch (error) {
      // another process may have applied it between our read and our write; that is fine
      done = await appliedIds(client);
      if (!done.has(migration.id)) throw error;
    }
  }
  return applied;
}
