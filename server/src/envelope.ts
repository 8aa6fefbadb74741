/** Mage's envelopes: `{"pipeline_run": {...}}` for one record, `{"pipeline_runs": [...], "metadata": {...}}` for a list. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** One record under its name. */
export function one(c: Context, name: string, record: unknown, status: ContentfulStatusCode = 200): Response {
  return c.json({ [name]: record }, status);
}

/**
 * A list of records under their plural name. As in Mage, `metadata.count` is the total matching
 * (`total`; without one, the records given, which is then the whole list) and `metadata.next`
 * says whether more follow; `metadata.after` is kiln's keyset cursor for the following page (pass
 * it as `_after`), null on the last page, so a deep page costs what the first does.
 */
export function list(c: Context, name: string, records: unknown[], after: string | null = null, total?: number): Response {
  return c.json({ [name]: records, metadata: { count: total ?? records.length, next: after !== null, after } });
}
