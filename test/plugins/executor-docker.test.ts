/**
 * The Docker executor against a real container engine (podman's Docker-compatible API): the
 * executor conformance suite, a pull that fails inside the progress stream, labels, env, limits,
 * keep_container, DOCKER_HOST. Under CI=true, an engine that cannot start fails the file.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "bun:test";
import { stringify } from "yaml";
import type Docker from "dockerode";
import { type BlockJob, type ExecutionStatus, type Executor, type JsonObject } from "@kiln/core";
import { runExecutorConformance, settleExecution } from "@kiln/core/conformance";
import { CANCELLED_SUFFIX, dockerExecutor, MANAGED_LABEL, type DockerHandle } from "@kiln/executor-docker";
import { conformanceProject } from "../helpers/conformance.ts";
import { REPO_ROOT } from "../helpers/fixtures.ts";
import { KILN_IN_IMAGE, kilnTestImage, podmanMissing, startPodman, type PodmanEngine } from "../helpers/podman.ts";

const PROJECT_IN_IMAGE = "/project";

/** The engine and the image, or why there are none. */
async function setUp(): Promise<{ engine: PodmanEngine; image: string } | { skipped: string }> {
  const missing = podmanMissing();
  if (missing) return { skipped: missing };
  let engine: PodmanEngine;
  try {
    engine = await startPodman();
  } catch (error) {
    return { skipped: `podman could not serve the Docker API: ${error instanceof Error ? error.message : String(error)}` };
  }
  try {
    return { engine, image: await kilnTestImage(engine.docker) };
  } catch (error) {
    engine.stop();
    return { skipped: `the test image could not be built: ${error instanceof Error ? error.message : String(error)}` };
  }
}

const ready = await setUp();
if ("skipped" in ready) {
  if (process.env.CI === "true") throw new Error(`the Docker executor's tests need a container engine: ${ready.skipped}`);
  console.warn(`skipping the Docker executor's tests: ${ready.skipped}`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls status until the block run ends. */
const settle = (executor: Executor, handle: JsonObject, limitMs = 60_000): Promise<ExecutionStatus> => settleExecution(executor, handle, limitMs, 100);

const fixture = "skipped" in ready ? null : await conformanceProject({ executorType: "docker" });

afterAll(async () => {
  if ("skipped" in ready) return;
  try {
    // every container these tests made, kept or left behind by a failed test
    const mine = await ready.engine.docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=docker`] } });
    await Promise.all(mine.map((c) => ready.engine.docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  } finally {
    ready.engine.stop();
    fixture?.close();
  }
});

describe.skipIf("skipped" in ready)("executor-docker (a container per block run, on podman)", () => {
  if ("skipped" in ready || !fixture) return;
  const { engine, image } = ready;
  const docker: Docker = engine.docker;

  /** executor_config for a conformance project: the test image, with kiln's repository and the project mounted. */
  const configFor = (root: string, extra: JsonObject = {}): JsonObject => ({
    image,
    socket_path: engine.socketPath,
    pull: "never",
    volumes: [`${REPO_ROOT}:${KILN_IN_IMAGE}:ro`, `${root}:${PROJECT_IN_IMAGE}`],
    // the project's database is a file in the project, which the container sees at /project
    env: { KILN_DATABASE_URL: `file:${PROJECT_IN_IMAGE}/.kiln/kiln.db` },
    network: "none",
    ...extra,
  });

  // the container's kiln run-block loads kiln.yaml and checks its executor_config: write it there too
  writeFileSync(join(fixture.root, "kiln.yaml"), stringify({ executor_type: "docker", executors: { docker: configFor(fixture.root) } }));
  const makeExecutor = () => dockerExecutor({ blockEnv: { KILN_DATABASE_URL: fixture.databaseUrl }, env: {} });
  /** A conformance job with the test's executor_config (the fixture's kiln.yaml has none). */
  const jobWith = async (block: Parameters<typeof fixture.harness.job>[0], extra: JsonObject = {}): Promise<BlockJob> => {
    const job = await fixture.harness.job(block);
    return { ...job, executorConfig: { ...job.executorConfig, ...configFor(fixture.root, extra) } };
  };

  /** Whether a container is gone from the engine. */
  const gone = async (handle: JsonObject): Promise<boolean> => {
    try {
      await docker.getContainer(String(handle.container_id)).inspect();
      return false;
    } catch {
      return true;
    }
  };

  describe("conformance", () => {
    runExecutorConformance(
      makeExecutor,
      {
        ...fixture.harness,
        job: (block) => jobWith(block),
        stopped: gone,
        // no field is required (the image defaults to kiln's own): a malformed one is named
        invalidConfig: { config: { volumes: ["/only-a-host-path"] }, field: "volumes[0]" },
        settleMs: 30_000,
      },
      test,
    );
  });

  test("a pull that fails inside the progress stream (HTTP 200) fails the start with the registry's message", async () => {
    const executor = makeExecutor();
    // no registry is reachable here: podman answers the pull with 200 and {"error"} in the stream
    const job = await jobWith("succeeds", { image: "registry.invalid/kiln/none:1", pull: "always" });
    const error = await executor.start(job).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain("could not pull image registry.invalid/kiln/none:1: ");
    // the registry's own words, not a generic failure
    expect((error as Error).message).toMatch(/registry\.invalid/);
    expect((error as Error).message.length).toBeGreaterThan("could not pull image registry.invalid/kiln/none:1: ".length + 10);
    const left = await docker.listContainers({ all: true, filters: { label: [`kiln.block-run-id=${job.blockRunId}`] } });
    expect(left).toEqual([]);
  });

  test("no image named and kiln's default image not built: the start fails saying how to build it", async () => {
    const executor = dockerExecutor({ blockEnv: { KILN_DATABASE_URL: fixture.databaseUrl }, env: { KILN_DOCKER_IMAGE: "localhost/kiln-default-not-built:1" } });
    const job = await jobWith("succeeds");
    const { image: _named, ...withoutImage } = job.executorConfig;
    const error = await executor.start({ ...job, executorConfig: withoutImage }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain("localhost/kiln-default-not-built:1");
    expect((error as Error).message).toContain("docker build -t kiln .");
    expect((error as Error).message).toContain("KILN_DOCKER_IMAGE");
  });

  test("pull: never with an image that is not there fails the start naming the image", async () => {
    const job = await jobWith("succeeds", { image: "localhost/kiln-not-built:1", pull: "never" });
    await expect(makeExecutor().start(job)).rejects.toThrow(/could not create the container from localhost\/kiln-not-built:1: .*(no such image|image not known)/i);
  });

  test("the container gets the block run's labels, env, limits, network and volumes; kept, it survives logs()", async () => {
    const executor = makeExecutor();
    const job = await jobWith("logs", {
      keep_container: true,
      memory: "256m",
      cpus: 0.5,
      env: { KILN_DATABASE_URL: `file:${PROJECT_IN_IMAGE}/.kiln/kiln.db`, EXTRA_SETTING: "from-config" },
    });
    const handle = (await executor.start(job)) as DockerHandle;
    expect(handle.container_name).toStartWith("kiln-conformance-logs-");
    expect(handle.docker_host).toBe(`unix://${engine.socketPath}`);
    expect(await settle(executor, handle)).toEqual({ state: "completed", metrics: { exit_code: 0 } });
    const info = await docker.getContainer(handle.container_id).inspect();
    expect(info.Config.Labels).toMatchObject({
      "kiln.pipeline-uuid": "conformance",
      "kiln.pipeline-run-id": String(job.pipelineRunId),
      "kiln.block-run-id": String(job.blockRunId),
      "kiln.attempt": String(job.attempt),
      "kiln.block-uuid": "logs",
      [MANAGED_LABEL]: "docker",
    });
    const env = new Set(info.Config.Env);
    expect(env.has(`KILN_BLOCK_RUN_ID=${job.blockRunId}`)).toBe(true);
    expect(env.has(`KILN_PIPELINE_RUN_ID=${job.pipelineRunId}`)).toBe(true);
    expect(env.has("KILN_BLOCK_LOGS=stdout")).toBe(true);
    expect(env.has("EXTRA_SETTING=from-config")).toBe(true);
    // config.env wins over the context's blockEnv (the host path means nothing in the container)
    expect(env.has(`KILN_DATABASE_URL=file:${PROJECT_IN_IMAGE}/.kiln/kiln.db`)).toBe(true);
    // executor_config.command is the entrypoint, whatever the image's own
    expect(info.Config.Entrypoint).toEqual(["kiln"]);
    expect(info.Config.Cmd).toEqual(["run-block", PROJECT_IN_IMAGE, "conformance", "logs", "--pipeline-run-id", String(job.pipelineRunId), "--block-run-id", String(job.blockRunId)]);
    expect(info.HostConfig.Memory).toBe(256 * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info.HostConfig.NetworkMode).toBe("none");
    expect(info.HostConfig.Binds).toEqual(expect.arrayContaining([expect.stringContaining(`${fixture.root}:${PROJECT_IN_IMAGE}`)]));
    const lines: string[] = [];
    for await (const line of executor.logs!(handle)) lines.push(line);
    expect(lines.some((line) => line.includes("INFO conformance log line"))).toBe(true);
    expect(lines).toContain("conformance log line (stdout)");
    // keep_container: reading the log does not remove it, and it still reads as completed
    expect(await gone(handle)).toBe(false);
    expect(await makeExecutor().status(handle)).toEqual({ state: "completed", metrics: { exit_code: 0 } });
  });

  test("without keep_container, reading a finished container's log removes it", async () => {
    const executor = makeExecutor();
    const handle = await executor.start(await jobWith("fails"));
    const status = await settle(executor, handle);
    expect(status).toMatchObject({ state: "failed", error: "exit code 1: planned failure" });
    expect(await gone(handle)).toBe(false);
    const lines: string[] = [];
    for await (const line of executor.logs!(handle)) lines.push(line);
    expect(lines.some((line) => line.includes("planned failure"))).toBe(true);
    expect(await gone(handle)).toBe(true);
  });

  test("a kept container that was cancelled still reads as cancelled to a fresh executor", async () => {
    const executor = makeExecutor();
    const handle = await executor.start(await jobWith("sleeps", { keep_container: true }));
    await executor.cancel(handle);
    const info = await docker.getContainer(String(handle.container_id)).inspect();
    expect(info.Name.replace(/^\//, "")).toBe(`${handle.container_name}${CANCELLED_SUFFIX}`);
    expect(await settle(makeExecutor(), handle)).toEqual({ state: "cancelled" });
  });

  test("DOCKER_HOST from kiln's environment when the config names no engine", async () => {
    const executor = dockerExecutor({ blockEnv: {}, env: { DOCKER_HOST: `unix://${engine.socketPath}` } });
    const job = await jobWith("succeeds");
    delete job.executorConfig.socket_path;
    const handle = await executor.start(job);
    expect(handle.docker_host).toBe(`unix://${engine.socketPath}`);
    expect(await settle(executor, handle)).toMatchObject({ state: "completed" });
    expect(await fixture.harness.output(job)).toEqual({ ok: true });
  });
});
