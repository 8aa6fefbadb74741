/** Keyset pagination, shared by every list the API serves: newest first, `id < cursor`. */
import type { InValue, Row } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";

export interface Page<T> {
  items: T[];
  /** Pass as `after` to get the next page; null on the last page. */
  next: string | null;
}

/** Conditions joined with AND, and their arguments: one list's filter, shared by its page and its total. */
export interface RowFilter {
  where: string[];
  args: InValue[];
}

export interface PageRequest {
  limit?: number;
  after?: string | null;
  /** Rows to skip (Mage's `_offset`), at most MAX_PAGE_OFFSET; an offset costs what it skips, a cursor (`after`) does not. */
  offset?: number;
}

/** The deepest `_offset` served: deeper pages are reached with the cursor, which costs the same at any depth. */
export const MAX_PAGE_OFFSET = 10_000;

/**
 * One page of `table` rows matching `where` (conditions joined with AND), newest first. As fast
 * on page 10,000 as on page 1: it seeks by id through an index instead of skipping rows.
 */
export async function listPage<T extends { id: number }>(
  client: SqlClient,
  table: string,
  filter: RowFilter,
  page: PageRequest,
  fromRow: (row: Row) => T,
): Promise<Page<T>> {
  const limit = Math.min(Math.max(page.limit ?? 50, 1), 1000);
  const where = [...filter.where];
  const args = [...filter.args];
  if (page.after) {
    const cursor = Number(page.after);
    if (!Number.isInteger(cursor)) throw new RangeError(`invalid page cursor: ${page.after}`);
    where.push("id < ?");
    args.push(cursor);
  }
  const offset = Math.min(Math.max(Math.trunc(page.offset ?? 0), 0), MAX_PAGE_OFFSET);
  const rs = await client.execute({
    sql: `SELECT * FROM ${table} ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?${offset > 0 ? " OFFSET ?" : ""}`,
    args: offset > 0 ? [...args, limit + 1, offset] : [...args, limit + 1],
  });
  const items = rs.rows.slice(0, limit).map(fromRow);
  const last = items[items.length - 1];
  return { items, next: rs.rows.length > limit && last ? String(last.id) : null };
}

/**
 * How many `table` rows match `filter` (Mage's `metadata.count`): a count through the table's
 * indexes, for the lists whose rows are few by nature (triggers and backfills, made by people; one
 * run's block runs, one per block). Pipeline runs, which grow without bound, are totalled from the
 * run counters instead (counters.ts).
 */
export async function countRows(client: SqlClient, table: string, filter: RowFilter): Promise<number> {
  const rs = await client.execute({ sql: `SELECT count(*) AS n FROM ${table} ${filter.where.length ? `WHERE ${filter.where.join(" AND ")}` : ""}`, args: filter.args });
  return Number(rs.rows[0]?.n ?? 0);
}
