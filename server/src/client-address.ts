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
  const env = c.env as { remoteAddress?: unknown } | undefined;
  const onWorkers = !(env && "remoteAddress" in env);
  if (c.get("trustProxy") === true) {
    const entries = (c.req.header("x-forwarded-for") ?? "").split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
    // Cloudflare appends the address that connected to it (CF-Connecting-IP), which behind a
    // proxy of the user's own is that proxy: the client is the entry the proxy appended before it
    const connecting = onWorkers ? c.req.header("cf-connecting-ip")?.trim() : undefined;
    if (connecting && entries.length > 1 && entries.at(-1) === connecting) entries.pop();
    const last = entries.at(-1);
    if (last) return last;
  }
  if (env && typeof env.remoteAddress === "string" && env.remoteAddress !== "") return env.remoteAddress;
  if (env && "remoteAddress" in env) return "unknown";
  return c.req.header("cf-connecting-ip") ?? "unknown";
}
