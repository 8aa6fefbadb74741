/** The k8s executor passes the executor conformance suite against the fake Kubernetes API server. */
import { afterAll, describe, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runExecutorConformance } from "@kiln/core/conformance";
import kubernetesExecutorFactory from "@kiln/executor-kubernetes/node";
import { fileLogSink } from "@kiln/node";
import { stringify } from "yaml";
import { conformanceProject } from "../helpers/conformance.ts";
import { FakeContainers } from "../helpers/fake-containers.ts";
import { FakeKubernetes } from "../helpers/fake-kubernetes.ts";

const TOKEN = "conformance-token-5f2a";
const NAMESPACE = "kiln-jobs";

const containers = new FakeContainers();
const fake = new FakeKubernetes({ containers, token: TOKEN, namespaces: [NAMESPACE] });
const fixture = await conformanceProject({ executorType: "k8s", executorConfig: { image: "registry.example/etl:1" } });
const kubeconfig = join(fixture.root, "kubeconfig.yaml");
writeFileSync(
  kubeconfig,
  stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": "fake",
    clusters: [{ name: "fake", cluster: { server: fake.url } }],
    users: [{ name: "kiln", user: { token: TOKEN } }],
    contexts: [{ name: "fake", context: { cluster: "fake", user: "kiln", namespace: NAMESPACE } }],
  }),
);
afterAll(() => {
  fake.close();
  fixture.close();
});

describe("executor-kubernetes (a Job per block run, against a fake API server)", () => {
  runExecutorConformance(
    () =>
      kubernetesExecutorFactory({
        projectRoot: fixture.root,
        blockEnv: { KILN_DATABASE_URL: fixture.databaseUrl },
        env: { KUBECONFIG: kubeconfig },
        logs: fileLogSink(fixture.root),
      }),
    {
      ...fixture.harness,
      stopped: async (handle) => fake.stopped(String(handle.namespace), String(handle.name)),
      invalidConfig: { config: { namespace: "etl" }, field: "image" },
      settleMs: 30_000,
    },
    test,
  );
});
