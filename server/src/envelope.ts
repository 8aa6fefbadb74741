/** Mage's envelopes: `{"pipeline_run": {...}}` for one record, `{"pipeline_runs": [...], "metadata": {...}}` for a list. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** One record under its name. */
export function one(c: Context, name: string, record: unknown, status: ContentfulStatusCode = 200): Response {
  return c.json({ [name]: record }, status);
}

/**
 * A page of records under their plural name. `count` is the number on this page and `next` the
 * cursor for the following one (pass it as `_after`), null on the last page: lists are keyset
 * paginated, so a deep page costs what the first does and no total is counted.
 */
export function list(c: Context, name: string, records: unknown[], next: string | null = null): Response {
  return c.json({ [name]: records, metadata: { count: records.length, next } });
}
