/**
 * Cloudflare D1 as the store's SqlClient. D1's `batch()` runs its statements as one transaction
 * (all or nothing), which is what the store's guarded batches and group commit need; `execute`
 * is one prepared statement. What D1 does not say, and the store relies on, is *which* statement
 * of a failed batch failed (libSQL's statementIndex): group commit uses it to reject only the
 * batch whose guard lost and commit the others. This adapter finds it by probing: it replays
 * prefixes of the failed batch followed by a statement that always fails, so every probe rolls
 * back and nothing is written twice.
 */
import type { InArgs, InStatement, InValue, ResultSet, Row, TransactionMode } from "@libsql/client";
import { resultSetOf, type SqlClient } from "@kiln/core/store";

/** The parts of Cloudflare's D1 binding this adapter uses (D1Database in @cloudflare/workers-types). */
export interface D1Database {
  prepare(sql: string): D1PreparedStatement;
  batch(statements: D1PreparedStatement[]): Promise<D1Result[]>;
}

/** A D1 prepared statement (the parts used). */
export interface D1PreparedStatement {
  bind(...values: unknown[]): D1PreparedStatement;
  all(): Promise<D1Result>;
}

/** What D1 answers for one statement (the parts used). */
export interface D1Result {
  results?: Array<Record<string, unknown>>;
  meta?: { changes?: number; last_row_id?: number };
}

/** A statement of a D1 batch failed; like @libsql/client's LibsqlBatchError, it says which one. */
export class D1BatchStatementError extends Error {
  override readonly name = "D1BatchStatementError";
  constructor(
    readonly statementIndex: number,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/** The probe's own failure: a JSON path error whose text names it, so it is told apart from the batch's. */
const PROBE_MARKER = "kiln-d1-probe";
const PROBE_SQL = `SELECT json_extract('{}', '${PROBE_MARKER}')`;

/** D1 binds null, numbers, strings and ArrayBuffers; libSQL's other argument types are converted. */
function toD1Value(value: InValue): unknown {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "bigint") {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new RangeError(`D1 cannot bind the integer ${value}: it is beyond JavaScript's safe integers`);
    }
    return Number(value);
  }
  if (value instanceof Date) return value.getTime();
  if (value === undefined) return null;
  return value;
}

function toD1Args(args: InArgs | undefined): unknown[] {
  if (args === undefined) return [];
  // named arguments are not something D1 binds; the store uses positional ones only
  if (!Array.isArray(args)) throw new TypeError("the D1 client binds positional arguments only (?), not named ones");
  return args.map(toD1Value);
}

function prepare(db: D1Database, statement: InStatement): D1PreparedStatement {
  const sql = typeof statement === "string" ? statement : statement.sql;
  const args = typeof statement === "string" ? [] : toD1Args(statement.args);
  const prepared = db.prepare(sql);
  return args.length > 0 ? prepared.bind(...args) : prepared;
}

/** D1 returns a blob as an array of bytes; libSQL as an ArrayBuffer, which the store reads. */
function fromD1Value(value: unknown): unknown {
  if (Array.isArray(value)) return new Uint8Array(value as number[]).buffer;
  return value;
}

function resultSet(result: D1Result): ResultSet {
  const objects = result.results ?? [];
  const columns = objects[0] ? Object.keys(objects[0]) : [];
  const rows = objects.map((object) => {
    const row: Record<string | number, unknown> = {};
    columns.forEach((column, i) => {
      const value = fromD1Value(object[column]);
      row[column] = value;
      // libSQL rows answer by position too
      Object.defineProperty(row, i, { value, enumerable: false });
    });
    Object.defineProperty(row, "length", { value: columns.length, enumerable: false });
    return row as unknown as Row;
  });
  const rowsAffected = result.meta?.changes ?? 0;
  const lastRowId = result.meta?.last_row_id;
  const lastInsertRowid = typeof lastRowId === "number" ? BigInt(lastRowId) : undefined;
  return resultSetOf(rows, columns, rowsAffected, lastInsertRowid);
}

function isProbeFailure(error: unknown): boolean {
  return String(error instanceof Error ? error.message : error).includes(PROBE_MARKER);
}

/**
 * The index of the first statement of `statements` that fails, found by binary search over
 * prefixes, each probe rolled back by the failing statement at its end; null when every prefix
 * now succeeds (the data changed since the batch failed).
 */
async function failingIndex(db: D1Database, statements: readonly InStatement[]): Promise<number | null> {
  const prefixSucceeds = async (length: number): Promise<boolean> => {
    try {
      await db.batch([...statements.slice(0, length).map((s) => prepare(db, s)), db.prepare(PROBE_SQL)]);
    } catch (error) {
      return isProbeFailure(error);
    }
    throw new Error("the D1 probe statement did not fail; refusing to trust D1's batch rollback");
  };
  // invariant: the prefix of length `low` succeeds, that of length `high` fails
  let low = 0;
  let high = statements.length;
  if (await prefixSucceeds(high)) return null;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await prefixSucceeds(middle)) low = middle;
    else high = middle;
  }
  return high - 1;
}

/** The store's SqlClient over a D1 binding (env.DB): one statement per execute, one transaction per batch. */
export function d1Client(db: D1Database): SqlClient {
  const client = {
    async execute(statement: InStatement): Promise<ResultSet> {
      return resultSet(await prepare(db, statement).all());
    },
    // D1 has one transaction mode: a batch is a serialized write transaction whatever the mode asks
    async batch(statements: InStatement[], _mode?: TransactionMode): Promise<ResultSet[]> {
      if (statements.length === 0) return [];
      try {
        return (await db.batch(statements.map((s) => prepare(db, s)))).map(resultSet);
      } catch (error) {
        if (statements.length === 1) throw new D1BatchStatementError(0, error);
        const index = await failingIndex(db, statements);
        if (index === null) throw error;
        throw new D1BatchStatementError(index, error);
      }
    },
    // the binding belongs to the invocation's env; there is nothing to close
    close(): void {},
  };
  return client as unknown as SqlClient;
}
