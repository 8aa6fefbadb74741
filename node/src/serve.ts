/**
 * Serving a fetch handler over HTTP on whichever runtime runs kiln: Bun.serve on Bun,
 * Deno.serve on Deno, node:http (through @hono/node-server) on Node. The Hono app is the same
 * everywhere; only the listener differs.
 */
import type { AddressInfo } from "node:net";

/** What the listener knows of a request besides the request itself; Hono sees it as `c.env`. */
export interface ConnectionInfo {
  /** The peer's IP address (the proxy's, behind a proxy). */
  remoteAddress?: string;
}

export type FetchHandler = (request: Request, connection?: ConnectionInfo) => Response | Promise<Response>;

export interface HttpServer {
  /** The port listened on (the one picked when 0 was asked for). */
  readonly port: number;
  /** Stops listening and closes open connections (log streams included). */
  close(): Promise<void>;
}

/** The part of Deno's API used here; kiln does not depend on Deno's type definitions. */
interface DenoServe {
  serve(
    options: { port: number; hostname: string; onListen?: (addr: { port: number }) => void },
    handler: (request: Request, info: { remoteAddr?: { hostname?: string } }) => Response | Promise<Response>,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}

/** The name of the runtime executing kiln: "bun", "deno" or "node". */
export function runtimeName(): "bun" | "deno" | "node" {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return "node";
}

/** Listens on hostname:port (0 for a free port) and resolves once connections are accepted. */
export async function serveHttp(fetch: FetchHandler, options: { port: number; hostname: string }): Promise<HttpServer> {
  const runtime = runtimeName();
  if (runtime === "bun") {
    // idleTimeout 0: log streams stay open as long as the run goes on
    const server = Bun.serve({
      port: options.port,
      hostname: options.hostname,
      fetch: (request, bun) => fetch(request, { remoteAddress: bun.requestIP(request)?.address }),
      idleTimeout: 0,
    });
    return { port: server.port ?? options.port, close: async () => void (await server.stop(true)) };
  }
  if (runtime === "deno") {
    const deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
    const server = deno.serve({ port: options.port, hostname: options.hostname, onListen: () => {} }, (request, info) => fetch(request, { remoteAddress: info.remoteAddr?.hostname }));
    return { port: server.addr.port, close: () => server.shutdown() };
  }
  // imported only on Node: every kiln command imports this module (runtimeCommand), few serve on Node
  const { serve: serveNode } = await import("@hono/node-server");
  const server = await new Promise<ReturnType<typeof serveNode>>((resolve, reject) => {
    // @hono/node-server passes {incoming, outgoing} as the second argument: the socket has the peer
    const s = serveNode(
      { fetch: (request: Request, env: { incoming?: { socket?: { remoteAddress?: string } } }) => fetch(request, { remoteAddress: env.incoming?.socket?.remoteAddress }), port: options.port, hostname: options.hostname },
      () => resolve(s),
    );
    s.once("error", reject);
  });
  // node:http times requests out after 5 minutes by default, which would cut log streams
  if ("requestTimeout" in server) server.requestTimeout = 0;
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        if ("closeAllConnections" in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The command that runs `script` on this runtime with this process's flags (Node's `--import
 * tsx`, made absolute so a child started in another folder finds it; Deno's node:child_process
 * adds its own permissions), for child processes such as `kiln run-block`.
 */
export function runtimeCommand(script: string): string[] {
  const flags = [...process.execArgv];
  for (let i = 0; i < flags.length - 1; i++) {
    const value = flags[i + 1] as string;
    if ((flags[i] === "--import" || flags[i] === "--loader") && !/^(\.|\/|file:|node:)/.test(value)) flags[i + 1] = import.meta.resolve(value);
  }
  return [process.execPath, ...flags, script];
}
