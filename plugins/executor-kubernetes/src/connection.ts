/**
 * Where the Kubernetes API is and how to authenticate to it: a kubeconfig (a file, or its
 * content in KILN_KUBECONFIG_DATA) or the pod's own service account (in-cluster). Files are read
 * only through the ReadFile the caller passes, so this module runs on Workers, where there are
 * no files: there, the kubeconfig's content comes from the environment.
 */
import { parse } from "yaml";
import type { ConnectionChoice } from "./config.ts";

/** Reads a text file; null when it does not exist. */
export type ReadFile = (path: string) => Promise<string | null>;

/** TLS settings fetch must be given for this cluster (PEM text). */
export interface KubeTls {
  ca: string | null;
  cert: string | null;
  key: string | null;
  insecureSkipVerify: boolean;
}

/** A resolved way to talk to one cluster. Holds credentials: never logged, never stored. */
export interface KubeConnection {
  /** The API server's base URL, without a trailing slash. */
  server: string;
  /** The namespace of the kubeconfig context, or of the pod kiln runs in. */
  namespace: string | null;
  token: string | null;
  tls: KubeTls;
  /** Where this came from, for messages ("kubeconfig /root/.kube/config, context prod"). */
  source: string;
}

/** A cluster connection that cannot be set up, with a message saying what to configure. */
export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
}

/** Where a pod's service account credentials are mounted. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The variable holding a kubeconfig's content, for runtimes without files (Workers) and for secrets managers. */
export const KUBECONFIG_DATA_ENV = "KILN_KUBECONFIG_DATA";

type Env = Record<string, string | undefined>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Decodes a kubeconfig `*-data` field (base64 of PEM text). */
function decodeBase64(text: string, where: string): string {
  try {
    const binary = atob(text.replace(/\s+/g, ""));
    return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    throw new KubeConfigError(`${where}: not valid base64`);
  }
}

function dirnameOf(path: string): string {
  const at = path.lastIndexOf("/");
  return at <= 0 ? (at === 0 ? "/" : ".") : path.slice(0, at);
}

/** A path in a kubeconfig is relative to the kubeconfig's own folder, as kubectl reads it. */
function resolvePath(path: string, baseDir: string | null): string {
  if (path.startsWith("/") || baseDir === null) return path;
  return `${baseDir.replace(/\/$/, "")}/${path}`;
}

async function readRequired(readFile: ReadFile | null, path: string, what: string): Promise<string> {
  if (!readFile) {
    throw new KubeConfigError(`${what} is the file ${path}, and kiln cannot read files on this runtime: put the content in the kubeconfig (the *-data fields) and pass it in ${KUBECONFIG_DATA_ENV}`);
  }
  const text = await readFile(path);
  if (text === null) throw new KubeConfigError(`${what}: the file ${path} does not exist`);
  return text;
}

/** A named entry of a kubeconfig list (clusters, users, contexts). */
function entry(config: Record<string, unknown>, list: string, name: string, source: string): Record<string, unknown> {
  const items = config[list];
  const found = Array.isArray(items) ? items.find((item) => isObject(item) && item.name === name) : undefined;
  if (!isObject(found)) throw new KubeConfigError(`${source}: no ${list.replace(/s$/, "")} named "${name}" in ${list}`);
  const body = found[list.replace(/s$/, "")];
  return isObject(body) ? body : {};
}

function optionalText(value: unknown, where: string): string | null {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value !== "string") throw new KubeConfigError(`${where}: expected a string`);
  return value;
}

/** A PEM value from a kubeconfig: inline (`<field>-data`, base64) or a file (`<field>`). */
async function pem(section: Record<string, unknown>, field: string, where: string, baseDir: string | null, readFile: ReadFile | null): Promise<string | null> {
  const data = optionalText(section[`${field}-data`], `${where}.${field}-data`);
  if (data !== null) return decodeBase64(data, `${where}.${field}-data`);
  const file = optionalText(section[field], `${where}.${field}`);
  if (file === null) return null;
  return readRequired(readFile, resolvePath(file, baseDir), `${where}.${field}`);
}

/**
 * Parses a kubeconfig into a connection for one of its contexts (`contextName`, else its
 * current-context). `path` is the file it came from (relative paths inside it are from its
 * folder), or null for inline content.
 */
export async function parseKubeconfig(text: string, options: { path: string | null; contextName: string | null; readFile: ReadFile | null }): Promise<KubeConnection> {
  const label = options.path ? `kubeconfig ${options.path}` : `kubeconfig from ${KUBECONFIG_DATA_ENV}`;
  let config: unknown;
  try {
    config = parse(text);
  } catch (error) {
    throw new KubeConfigError(`${label}: not valid YAML (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`);
  }
  if (!isObject(config)) throw new KubeConfigError(`${label}: expected a kubeconfig (a mapping with clusters, users and contexts)`);
  const contextName = options.contextName ?? optionalText(config["current-context"], `${label}: current-context`);
  if (contextName === null) throw new KubeConfigError(`${label}: no current-context: set executor_config.context to one of its contexts`);
  const source = `${label}, context ${contextName}`;
  const context = entry(config, "contexts", contextName, label);
  const clusterName = optionalText(context.cluster, `${source}: cluster`);
  if (clusterName === null) throw new KubeConfigError(`${source}: the context names no cluster`);
  const cluster = entry(config, "clusters", clusterName, label);
  const userName = optionalText(context.user, `${source}: user`);
  const user = userName === null ? {} : entry(config, "users", userName, label);
  const baseDir = options.path ? dirnameOf(options.path) : null;
  const userWhere = `${label}: users.${userName ?? ""}`;

  const server = optionalText(cluster.server, `${label}: clusters.${clusterName}.server`);
  if (server === null) throw new KubeConfigError(`${label}: clusters.${clusterName} has no server`);
  if (!/^https?:\/\//.test(server)) throw new KubeConfigError(`${label}: clusters.${clusterName}.server: expected an https:// URL, got ${JSON.stringify(server)}`);
  if (cluster["proxy-url"] !== undefined) throw new KubeConfigError(`${label}: clusters.${clusterName}.proxy-url is not supported`);

  if (user.exec !== undefined) {
    throw new KubeConfigError(`${userWhere}.exec: credential plugins (such as aws eks get-token or gke-gcloud-auth-plugin) are not supported: use a kubeconfig whose user has a token (a ServiceAccount token) or a client certificate`);
  }
  if (user["auth-provider"] !== undefined) throw new KubeConfigError(`${userWhere}.auth-provider is not supported: use a token or a client certificate`);
  if (user.username !== undefined || user.password !== undefined) throw new KubeConfigError(`${userWhere}: basic auth (username, password) is not supported: use a token or a client certificate`);

  let token = optionalText(user.token, `${userWhere}.token`);
  const tokenFile = optionalText(user.tokenFile, `${userWhere}.tokenFile`);
  if (token === null && tokenFile !== null) token = (await readRequired(options.readFile, resolvePath(tokenFile, baseDir), `${userWhere}.tokenFile`)).trim();

  const insecure = cluster["insecure-skip-tls-verify"] === true;
  const tls: KubeTls = {
    ca: insecure ? null : await pem(cluster, "certificate-authority", `${label}: clusters.${clusterName}`, baseDir, options.readFile),
    cert: await pem(user, "client-certificate", userWhere, baseDir, options.readFile),
    key: await pem(user, "client-key", userWhere, baseDir, options.readFile),
    insecureSkipVerify: insecure,
  };
  if ((tls.cert === null) !== (tls.key === null)) throw new KubeConfigError(`${userWhere}: a client certificate needs both client-certificate and client-key`);
  return { server: server.replace(/\/+$/, ""), namespace: optionalText(context.namespace, `${source}: namespace`), token, tls, source };
}

/** The pod's own service account: the API server from the environment, token and CA from the mounted files. */
export async function inClusterConnection(env: Env, readFile: ReadFile | null): Promise<KubeConnection> {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (!host) throw new KubeConfigError("executor_config.in_cluster: KUBERNETES_SERVICE_HOST is not set: kiln is not running in a Kubernetes pod");
  const where = "executor_config.in_cluster: the service account's token";
  const token = (await readRequired(readFile, `${SERVICE_ACCOUNT_DIR}/token`, where)).trim();
  const ca = readFile ? await readFile(`${SERVICE_ACCOUNT_DIR}/ca.crt`) : null;
  const namespace = readFile ? ((await readFile(`${SERVICE_ACCOUNT_DIR}/namespace`))?.trim() ?? null) : null;
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    namespace: namespace || null,
    token,
    tls: { ca, cert: null, key: null, insecureSkipVerify: false },
    source: "the pod's service account (in-cluster)",
  };
}

/**
 * The connection for a block run's settings, looked for in this order: executor_config.in_cluster,
 * executor_config.kubeconfig, KILN_KUBECONFIG_DATA, KUBECONFIG (its first file that exists), the
 * pod's service account when KUBERNETES_SERVICE_HOST is set, then ~/.kube/config.
 */
export async function resolveConnection(choice: ConnectionChoice, env: Env, readFile: ReadFile | null): Promise<KubeConnection> {
  const fromFile = async (path: string, what: string): Promise<KubeConnection> =>
    parseKubeconfig(await readRequired(readFile, path, what), { path, contextName: choice.context, readFile });

  if (choice.inCluster) return inClusterConnection(env, readFile);
  if (choice.kubeconfig) return fromFile(choice.kubeconfig, "executor_config.kubeconfig");
  const data = env[KUBECONFIG_DATA_ENV];
  if (data) return parseKubeconfig(data, { path: null, contextName: choice.context, readFile });
  const listed = (env.KUBECONFIG ?? "").split(":").filter((path) => path !== "");
  if (listed.length > 0) {
    if (!readFile) return fromFile(listed[0]!, "KUBECONFIG");
    for (const path of listed) {
      const text = await readFile(path);
      if (text !== null) return parseKubeconfig(text, { path, contextName: choice.context, readFile });
    }
    throw new KubeConfigError(`KUBECONFIG: none of its files exist (${listed.join(", ")})`);
  }
  if (env.KUBERNETES_SERVICE_HOST) return inClusterConnection(env, readFile);
  if (readFile && env.HOME) {
    const path = `${env.HOME}/.kube/config`;
    const text = await readFile(path);
    if (text !== null) return parseKubeconfig(text, { path, contextName: choice.context, readFile });
  }
  throw new KubeConfigError(
    `no Kubernetes cluster configured: set executor_config.kubeconfig or KUBECONFIG to a kubeconfig file, put a kubeconfig's content in ${KUBECONFIG_DATA_ENV}, or run kiln in a pod (in-cluster)`,
  );
}
