/** The chaos run's own reads of kiln's database (a libSQL file or sqld), tolerant of a database that is down. */
import { createClient, type Client } from "@libsql/client";

export type Row = Record<string, unknown>;

export class ChaosDb {
  readonly #client: Client;

  constructor(url: string) {
    this.#client = createClient({ url });
  }

  /** Rows as plain objects; throws when the database cannot be reached. */
  async rows(sql: string, args: Array<string | number | null> = []): Promise<Row[]> {
    const rs = await this.#client.execute({ sql, args });
    return rs.rows.map((row) => Object.fromEntries(rs.columns.map((c) => [c, typeof row[c] === "bigint" ? Number(row[c]) : row[c]])));
  }

  /** Like rows, but [] while the database is unreachable (a restart in progress). */
  async tryRows(sql: string, args: Array<string | number | null> = []): Promise<Row[] | null> {
    try {
      return await this.rows(sql, args);
    } catch {
      return null;
    }
  }

  close(): void {
    this.#client.close();
  }
}
