/**
 * Which Docker Engine API a block run talks to: executor_config.docker_host or socket_path, else
 * DOCKER_HOST from kiln's environment, else the default socket. The endpoint is stored in the
 * handle as a string, so a fresh executor reconnects to the engine the container runs on.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { DockerConfigError } from "./config.ts";

/** The Docker socket when neither the config nor DOCKER_HOST names one. */
export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/** The endpoint a block run's container is created on, as a URL (unix://, tcp://, http://, https://). */
export function dockerEndpoint(
  config: { dockerHost: string | null; socketPath: string | null },
  env: Record<string, string | undefined>,
): string {
  if (config.dockerHost) return config.dockerHost;
  if (config.socketPath) return `unix://${config.socketPath}`;
  const fromEnv = env.DOCKER_HOST?.trim();
  return fromEnv ? fromEnv : DEFAULT_DOCKER_HOST;
}

/**
 * dockerode's options for an endpoint. TLS follows Docker's own variables: DOCKER_TLS_VERIFY (or
 * an https:// endpoint) with the ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH.
 */
export function dockerOptions(endpoint: string, env: Record<string, string | undefined>): Docker.DockerOptions {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new DockerConfigError(`docker_host: "${endpoint}" is not a URL (unix:///path, tcp://host:port, https://host:port)`);
  }
  if (url.protocol === "unix:") {
    if (!url.pathname) throw new DockerConfigError(`docker_host: "${endpoint}" names no socket path`);
    return { socketPath: decodeURIComponent(url.pathname) };
  }
  if (url.protocol !== "tcp:" && url.protocol !== "http:" && url.protocol !== "https:") {
    throw new DockerConfigError(`docker_host: unsupported scheme "${url.protocol}" in "${endpoint}" (unix, tcp, http or https)`);
  }
  const tlsVerify = env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== "" && env.DOCKER_TLS_VERIFY !== "0";
  const tls = url.protocol === "https:" || tlsVerify;
  const options: Docker.DockerOptions = {
    host: url.hostname,
    port: url.port || (tls ? 2376 : 2375),
    protocol: tls ? "https" : "http",
  };
  const certPath = env.DOCKER_CERT_PATH;
  if (tls && certPath) {
    options.ca = readFileSync(join(certPath, "ca.pem"));
    options.cert = readFileSync(join(certPath, "cert.pem"));
    options.key = readFileSync(join(certPath, "key.pem"));
  }
  return options;
}

/** One dockerode client per endpoint, so block runs on the same engine share its connection settings. */
export class DockerClients {
  readonly #clients = new Map<string, Docker>();
  readonly #env: Record<string, string | undefined>;

  constructor(env: Record<string, string | undefined>) {
    this.#env = env;
  }

  /** The client for an endpoint (see dockerEndpoint). */
  get(endpoint: string): Docker {
    let client = this.#clients.get(endpoint);
    if (!client) {
      client = new Docker(dockerOptions(endpoint, this.#env));
      this.#clients.set(endpoint, client);
    }
    return client;
  }
}
