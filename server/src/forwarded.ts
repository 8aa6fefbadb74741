/**
 * The scheme and host a client addressed. X-Forwarded-Proto and X-Forwarded-Host are taken only
 * when the server is told a proxy is in front (`trust_proxy`, KILN_TRUST_PROXY): without one,
 * anyone could send them and have a page reflect a host of their choosing (an API-trigger URL
 * pointing elsewhere) or pass the same-origin check with a forged host.
 */
import type { Context } from "hono";

/** What these helpers read of a request's context (the API's and the UI's alike). */
type RequestContext = Pick<Context, "req"> & { get(key: "trustProxy"): unknown };

function forwarded(c: RequestContext, name: string): string | undefined {
  if (c.get("trustProxy") !== true) return undefined;
  // a chain of proxies appends: the first value is what the client sent to the outermost one
  const value = c.req.header(name)?.split(",")[0]?.trim();
  return value ? value : undefined;
}

/** `https` or `http`: the forwarded scheme behind a trusted proxy, else the request's own. */
export function requestProto(c: RequestContext): string {
  const proto = forwarded(c, "x-forwarded-proto")?.toLowerCase();
  if (proto === "https" || proto === "http") return proto;
  return new URL(c.req.url).protocol.replace(/:$/, "");
}

/** The host (and port) the client addressed: the forwarded host behind a trusted proxy, else Host. */
export function requestHost(c: RequestContext): string {
  return forwarded(c, "x-forwarded-host") ?? c.req.header("host") ?? new URL(c.req.url).host;
}

/** Reads a trust_proxy setting (KILN_TRUST_PROXY): true or false (unset and empty are false); null for anything else. */
export function parseTrustProxy(value: string | undefined): boolean | null {
  if (value === undefined || /^(|false|0|no|off)$/i.test(value.trim())) return false;
  if (/^(true|1|yes|on)$/i.test(value.trim())) return true;
  return null;
}
