/** Mage's envelopes: `{"pipeline_run": {...}}` for one record, `{"pipeline_runs": [...], "metadata": {...}}` for a list. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** One record under its name. */
export function one(c: Context, name: string, record: unknown, status: ContentfulStatusCode = 200): Response {
  return c.json({ [name]: record }, status);
}

/** A whole list (nothing left out: users, API keys, secrets' names, pipelines): `metadata.count` is its length, `next` false. */
export function list(c: Context, name: string, records: unknown[]): Response {
  return c.json({ [name]: records, metadata: { count: records.length, next: false, after: null } });
}

/**
 * A page of a list under its plural name. As in Mage, `metadata.count` is the total matching the
 * filter (not the page's length) and `metadata.next` says whether more follow; `metadata.after` is
 * kiln's keyset cursor for the following page (pass it as `_after`), null on the last page, so a
 * deep page costs what the first does.
 */
export function paged(c: Context, name: string, records: unknown[], after: string | null, total: number): Response {
  return c.json({ [name]: records, metadata: { count: total, next: after !== null, after } });
}
