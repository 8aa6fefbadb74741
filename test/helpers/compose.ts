/**
 * compose.yaml's services started with podman, for the tests (podman-compose is not assumed;
 * Debian's 1.0.3 cannot take the tests' --root/--runroot storage flags): the file is parsed,
 * `${VAR:-default}` interpolated from the given variables, and each service becomes a
 * `podman run` on one network of its own, reachable by its service name, in depends_on order.
 * Only what compose.yaml uses is translated (image, command, environment, volumes, ports,
 * depends_on, init; restart is read but not applied, so a crash fails the test); any other service key fails the test, so the file and the test cannot
 * drift apart.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";
import { podman } from "./kiln-image.ts";

/** One service as compose.yaml declares it, after interpolation and merge keys. */
export interface ComposeService {
  image: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: string[];
  init?: boolean;
  restart?: string;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes: string[];
}

const KNOWN_KEYS = new Set(["image", "command", "environment", "volumes", "ports", "depends_on", "init", "restart"]);

/** `${VAR}`, `${VAR:-default}` and `$$` as compose interpolates them. */
function interpolate(text: string, variables: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, name: string | undefined, fallback: string | undefined) => {
    if (whole === "$$") return "$";
    const value = variables[name as string];
    return value !== undefined && value !== "" ? value : (fallback ?? "");
  });
}

/** Reads compose.yaml with these variables (KILN_IMAGE, KILN_PROJECT, ...). */
export function readCompose(path: string, variables: Record<string, string | undefined>): ComposeFile {
  const raw = parse(interpolate(readFileSync(path, "utf8"), variables), { merge: true }) as {
    services?: Record<string, Record<string, unknown>>;
    volumes?: Record<string, unknown>;
  };
  if (!raw.services) throw new Error(`${path}: no services`);
  const services: Record<string, ComposeService> = {};
  for (const [name, service] of Object.entries(raw.services)) {
    const unknown = Object.keys(service).filter((key) => !KNOWN_KEYS.has(key));
    if (unknown.length > 0) throw new Error(`${path}: services.${name} uses ${unknown.join(", ")}, which test/helpers/compose.ts does not translate`);
    if (typeof service.image !== "string") throw new Error(`${path}: services.${name}.image is missing`);
    const environment: Record<string, string> = {};
    for (const [key, value] of Object.entries((service.environment ?? {}) as Record<string, unknown>)) environment[key] = String(value);
    services[name] = {
      image: service.image,
      ...(service.command ? { command: (service.command as unknown[]).map(String) } : {}),
      environment,
      volumes: ((service.volumes ?? []) as unknown[]).map(String),
      ports: ((service.ports ?? []) as unknown[]).map(String),
      depends_on: ((service.depends_on ?? []) as unknown[]).map(String),
      ...(service.init === true ? { init: true } : {}),
      ...(typeof service.restart === "string" ? { restart: service.restart } : {}),
    };
  }
  return { services, volumes: Object.keys(raw.volumes ?? {}) };
}

/** Service names with each one's depends_on first. */
export function startOrder(file: ComposeFile): string[] {
  const order: string[] = [];
  const visit = (name: string, path: string[]) => {
    if (order.includes(name)) return;
    if (path.includes(name)) throw new Error(`compose: depends_on cycle ${[...path, name].join(" -> ")}`);
    const service = file.services[name];
    if (!service) throw new Error(`compose: depends_on names ${name}, which is not a service`);
    for (const dependency of service.depends_on ?? []) visit(dependency, [...path, name]);
    order.push(name);
  };
  for (const name of Object.keys(file.services)) visit(name, []);
  return order;
}

/** The services started, by name: each one's container name. */
export interface ComposeRun {
  project: string;
  network: string;
  containers: Record<string, string>;
  /** `podman logs` of a service's container. */
  logs(service: string): string;
  /** Removes every container, the network and the named volumes made for this run. */
  down(): void;
}

/** Starts every service of `file` (podman run -d), in depends_on order; the compose file's folder anchors relative volume paths. */
export function composeUp(composePath: string, file: ComposeFile): ComposeRun {
  const project = `kiln-test-${randomBytes(4).toString("hex")}`;
  const network = `${project}_default`;
  const containers: Record<string, string> = {};
  const volumes = file.volumes.map((name) => `${project}_${name}`);
  const down = () => {
    for (const container of Object.values(containers).reverse()) podman(["rm", "-f", "-t", "2", container], { allowFailure: true });
    podman(["network", "rm", "-f", network], { allowFailure: true });
    for (const volume of volumes) podman(["volume", "rm", "-f", volume], { allowFailure: true });
  };
  try {
    podman(["network", "create", network]);
    for (const name of startOrder(file)) {
      const service = file.services[name] as ComposeService;
      const container = `${project}_${name}`;
      const args = ["run", "-d", "--name", container, "--network", network, "--network-alias", name];
      if (service.init) args.push("--init");
      for (const [key, value] of Object.entries(service.environment ?? {})) args.push("-e", `${key}=${value}`);
      for (const spec of service.volumes ?? []) {
        const [source, ...rest] = spec.split(":");
        const named = file.volumes.includes(source as string);
        const host = named ? `${project}_${source}` : isAbsolute(source as string) ? (source as string) : resolve(dirname(composePath), source as string);
        args.push("-v", [host, ...rest].join(":"));
      }
      // published on loopback only: the test reaches the web server, nothing else on the machine does
      for (const port of service.ports ?? []) args.push("-p", `127.0.0.1:${port}`);
      args.push(service.image, ...(service.command ?? []));
      podman(args);
      containers[name] = container;
    }
  } catch (error) {
    down();
    throw error;
  }
  return {
    project,
    network,
    containers,
    logs: (service) => {
      const out = podman(["logs", containers[service] as string], { allowFailure: true });
      return `${out.stdout}${out.stderr}`;
    },
    down,
  };
}
