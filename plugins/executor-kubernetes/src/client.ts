/**
 * A small Kubernetes API client over fetch: the few calls the executor makes, with bearer-token
 * auth everywhere and a custom CA or client certificate where the runtime's fetch can take TLS
 * options (Bun's `tls`, Deno's createHttpClient). No node: imports: it runs on Workers too.
 */
import type { KubeConnection, KubeTls } from "./connection.ts";
import { messageOf } from "@kiln/core";

/** The fetch the client calls, so tests and runtimes can swap it. */
export type Fetch = (input: string, init: RequestInit) => Promise<Response>;

/** An error answer from the API server (its Status object), or the server being unreachable. */
export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  constructor(
    message: string,
    /** The HTTP status; 0 when no answer came. */
    readonly status: number,
    /** The Status object's reason (NotFound, Invalid, Forbidden, ...). */
    readonly reason: string | null,
  ) {
    super(message);
  }
}

interface BunTlsInit {
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
}

interface DenoHttpClientApi {
  createHttpClient(options: { caCerts?: string[]; cert?: string; key?: string }): unknown;
}

/** The extra fetch options this runtime needs for a cluster's TLS settings; throws where it cannot take them. */
export function tlsInit(connection: KubeConnection): Record<string, unknown> {
  const tls: KubeTls = connection.tls;
  const custom = tls.ca !== null || tls.cert !== null || tls.insecureSkipVerify;
  if (!custom || connection.server.startsWith("http://")) return {};
  const runtime = globalThis as { Bun?: unknown; Deno?: DenoHttpClientApi };
  if (runtime.Bun !== undefined) {
    const init: BunTlsInit = { tls: {} };
    if (tls.ca !== null) init.tls!.ca = tls.ca;
    if (tls.cert !== null && tls.key !== null) {
      init.tls!.cert = tls.cert;
      init.tls!.key = tls.key;
    }
    if (tls.insecureSkipVerify) init.tls!.rejectUnauthorized = false;
    return init as Record<string, unknown>;
  }
  if (runtime.Deno !== undefined && typeof runtime.Deno.createHttpClient === "function" && !tls.insecureSkipVerify) {
    const options: { caCerts?: string[]; cert?: string; key?: string } = {};
    if (tls.ca !== null) options.caCerts = [tls.ca];
    if (tls.cert !== null && tls.key !== null) {
      options.cert = tls.cert;
      options.key = tls.key;
    }
    return { client: runtime.Deno.createHttpClient(options) };
  }
  const needs = [tls.ca !== null && "a custom certificate authority", tls.cert !== null && "a client certificate", tls.insecureSkipVerify && "insecure-skip-tls-verify"]
    .filter(Boolean)
    .join(" and ");
  throw new KubeApiError(
    `the Kubernetes API at ${connection.server} (${connection.source}) needs ${needs}, which fetch on this runtime cannot be given: run kiln on Bun (or Deno), or use a kubeconfig whose user has a token and whose server has a publicly trusted certificate`,
    0,
    null,
  );
}

interface StatusBody {
  kind?: string;
  message?: string;
  reason?: string;
}

const REQUEST_TIMEOUT_MS = 30_000;
/** Further tries of a GET, PATCH or DELETE that got no answer, a 429 or a 5xx. */
const RETRIES = 2;
const RETRY_DELAY_MS = 250;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The API calls of one connection. */
export class KubeClient {
  readonly #tls: Record<string, unknown>;

  constructor(
    readonly connection: KubeConnection,
    private readonly fetcher: Fetch = (input, init) => fetch(input, init),
  ) {
    this.#tls = tlsInit(connection);
  }

  /** Sends one request; the answer's body as JSON, or a KubeApiError. */
  async json<T>(method: string, path: string, options: { query?: Record<string, string>; body?: unknown; contentType?: string } = {}): Promise<T> {
    const response = await this.send(method, path, options);
    return (await response.json()) as T;
  }

  /** Sends one request and checks its status; the Response, to read as the caller needs. */
  async send(method: string, path: string, options: { query?: Record<string, string>; body?: unknown; contentType?: string } = {}): Promise<Response> {
    const url = new URL(this.connection.server + path);
    for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.connection.token !== null) headers.Authorization = `Bearer ${this.connection.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      body = JSON.stringify(options.body);
    }
    // a status poll that fails fails the block run: ride out a blip, but never repeat a create
    const attempts = method === "POST" ? 1 : RETRIES + 1;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetcher(url.toString(), { method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...this.#tls });
      } catch (error) {
        if (attempt < attempts) {
          await sleep(RETRY_DELAY_MS * attempt);
          continue;
        }
        const cause = messageOf(error);
        throw new KubeApiError(`cannot reach the Kubernetes API at ${this.connection.server} (${this.connection.source}): ${cause}`, 0, null);
      }
      if (response.ok) return response;
      if (attempt < attempts && (response.status === 429 || response.status >= 500)) {
        await response.body?.cancel();
        await sleep(RETRY_DELAY_MS * attempt);
        continue;
      }
      throw await this.#error(method, path, response);
    }
  }

  async #error(method: string, path: string, response: Response): Promise<KubeApiError> {
    const text = await response.text().catch(() => "");
    let status: StatusBody = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === "object" && parsed !== null) status = parsed as StatusBody;
    } catch {
      status = { message: text.slice(0, 300) };
    }
    const reason = status.reason ?? null;
    const detail = status.message || response.statusText || "no message";
    if (response.status === 401) {
      return new KubeApiError(
        `the Kubernetes API at ${this.connection.server} refused kiln's credentials (401 Unauthorized) from ${this.connection.source}: the token or client certificate is wrong or expired`,
        401,
        reason,
      );
    }
    if (response.status === 403) {
      return new KubeApiError(`the Kubernetes API at ${this.connection.server} forbids ${method} ${path} to the credentials from ${this.connection.source}: ${detail}`, 403, reason);
    }
    return new KubeApiError(`Kubernetes API ${method} ${path}: ${response.status} ${reason ?? response.statusText}: ${detail}`, response.status, reason);
  }
}
