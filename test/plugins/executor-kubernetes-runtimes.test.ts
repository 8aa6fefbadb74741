/**
 * The Kubernetes client's TLS and token paths on Deno and Node, in child processes against the
 * fake API server: Deno's fetch takes a private CA and a client certificate (createHttpClient);
 * Node's cannot, and says so; a bearer token over fetch works on both.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { FakeContainers } from "../helpers/fake-containers.ts";
import { FakeKubernetes, makeTestPki } from "../helpers/fake-kubernetes.ts";
import { REPO_ROOT } from "../helpers/fixtures.ts";

const TOKEN = "runtime-token-0b7e";
const dir = mkdtempSync(join(tmpdir(), "kiln-k8s-runtimes-"));
const pki = makeTestPki(join(dir, "pki"));
const containers = new FakeContainers();
const plain = new FakeKubernetes({ containers, token: TOKEN, namespaces: ["etl"] });
const secure = new FakeKubernetes({ containers, token: null, namespaces: ["etl"], tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requireClientCert: true } });
afterAll(() => {
  plain.close();
  secure.close();
  rmSync(dir, { recursive: true, force: true });
});

// asks for a Job that does not exist: a 404 from the fake means the connection and its credentials worked
const PROBE = `
import { parseKubeconfig } from ${JSON.stringify(join(REPO_ROOT, "plugins/executor-kubernetes/src/connection.ts"))};
import { KubeClient } from ${JSON.stringify(join(REPO_ROOT, "plugins/executor-kubernetes/src/client.ts"))};
const connection = await parseKubeconfig(process.env.KUBECONFIG_TEXT ?? "", { path: null, contextName: null, readFile: null });
try {
  await new KubeClient(connection).json("GET", "/apis/batch/v1/namespaces/etl/jobs/missing");
  console.log(JSON.stringify({ status: 200, message: "" }));
} catch (error) {
  console.log(JSON.stringify({ status: error.status, message: error.message }));
}
`;
const probe = join(dir, "probe.mts");
writeFileSync(probe, PROBE);

function kubeconfig(server: string, cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  return stringify({
    "current-context": "a",
    clusters: [{ name: "c", cluster: { server, ...cluster } }],
    users: [{ name: "u", user }],
    contexts: [{ name: "a", context: { cluster: "c", user: "u" } }],
  });
}

const withCertificates = kubeconfig(secure.url, { "certificate-authority-data": btoa(pki.ca) }, { "client-certificate-data": btoa(pki.clientCert), "client-key-data": btoa(pki.clientKey) });
const withToken = kubeconfig(plain.url, {}, { token: TOKEN });

/** Runs the probe on `runtime` (asynchronously: the fakes answer from this process's event loop). */
async function run(runtime: "deno" | "node", kubeconfigText: string): Promise<{ status: number; message: string }> {
  const argv = runtime === "deno" ? ["deno", "run", "-A", "--config", join(REPO_ROOT, "test/runtimes/deno.json"), probe] : ["node", "--import", "tsx", probe];
  const child = Bun.spawn(argv, { cwd: REPO_ROOT, env: { ...process.env, KUBECONFIG_TEXT: kubeconfigText }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  const line = stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as { status: number; message: string };
  } catch {
    throw new Error(`${runtime} printed no result:\n${stdout}\n${stderr}`);
  }
}

const hasDeno = spawnSync("deno", ["--version"]).status === 0;

describe("the Kubernetes client on other runtimes", () => {
  test.skipIf(!hasDeno)("Deno: a private CA and a client certificate through createHttpClient; a bearer token", async () => {
    expect(await run("deno", withCertificates)).toEqual({ status: 404, message: expect.stringContaining('jobs.batch "missing" not found') });
    const noClientCert = kubeconfig(secure.url, { "certificate-authority-data": btoa(pki.ca) }, {});
    expect(await run("deno", noClientCert)).toMatchObject({ status: 0, message: expect.stringContaining(`cannot reach the Kubernetes API at ${secure.url}`) });
    expect(await run("deno", withToken)).toMatchObject({ status: 404 });
    expect(plain.requests.at(-1)!.authorization).toBe(`Bearer ${TOKEN}`);
  }, 120_000);

  test("Node: a bearer token works; a private CA or client certificate is refused with a clear message", async () => {
    expect(await run("node", withToken)).toMatchObject({ status: 404 });
    const refused = await run("node", withCertificates);
    expect(refused.status).toBe(0);
    expect(refused.message).toContain("needs a custom certificate authority and a client certificate, which fetch on this runtime cannot be given");
  }, 120_000);
});
