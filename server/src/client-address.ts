/**
 * Who a request comes from, for the sign-in throttle: the peer address the listener saw
 * (node/serve.ts gives it as `c.env.remoteAddress`). On Cloudflare Workers, which give no peer
 * address, it is CF-Connecting-IP, which Cloudflare sets and a client cannot. Behind a reverse
 * proxy (`trust_proxy`, KILN_TRUST_PROXY) every peer is the proxy, so the client is the last
 * X-Forwarded-For entry: the one the proxy itself appended (earlier entries are whatever the
 * client sent, and forgeable). Without trust_proxy the header is ignored.
 */
import type { Context } from "hono";

/** The client's address, or "unknown" when the host gives none. */
export function clientAddress(c: Context): string {
  if (c.get("trustProxy") === true) {
    const last = c.req.header("x-forwarded-for")?.split(",").at(-1)?.trim();
    if (last) return last;
  }
  const env = c.env as { remoteAddress?: unknown } | undefined;
  if (env && typeof env.remoteAddress === "string" && env.remoteAddress !== "") return env.remoteAddress;
  if (env && "remoteAddress" in env) return "unknown";
  return c.req.header("cf-connecting-ip") ?? "unknown";
}
