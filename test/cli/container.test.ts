/**
 * kiln's container image under podman: the repository's Dockerfile builds (on a local Debian
 * base: no image registry is reachable here), its entrypoint is kiln with Bun and Python 3
 * inside; and compose.yaml's services (a web_server, two schedulers, Redis and sqld over the
 * example project mounted at /home/src/project), started exactly as the file declares them,
 * take an API-triggered run of the example to completed. Under CI=true, podman or debootstrap
 * missing fails the file; elsewhere it skips with the reason.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, TempDirs } from "../helpers/cli.ts";
import { composeUp, readCompose, startOrder, type ComposeRun } from "../helpers/compose.ts";
import { kilnImage, kilnImageMissing, podman, redisImage, sqldImage, type KilnImage } from "../helpers/kiln-image.ts";
import { freePort } from "../helpers/ports.ts";

const missing = kilnImageMissing();
if (missing) {
  if (process.env.CI === "true") throw new Error(`the container tests need podman: ${missing}`);
  console.warn(`skipping the container image tests: ${missing}`);
}

const temp = new TempDirs();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let image: KilnImage;
const runs: ComposeRun[] = [];

beforeAll(() => {
  if (missing) return;
  image = kilnImage();
  console.log(image.built ? `built ${image.tag} in ${image.seconds.toFixed(1)} s (base ${image.base})` : `${image.tag} was built already (base ${image.base})`);
}, 900_000);

afterAll(() => {
  for (const run of runs) run.down();
  temp.removeAll();
}, 60_000);

/** Polls `check` every 250 ms until it answers true, failing with `what` (and `detail()`) after `limitMs`. */
async function waitFor(what: string, check: () => Promise<boolean>, limitMs: number, detail: () => string = () => ""): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await sleep(250);
  }
}

describe.skipIf(missing !== null)("the image (Dockerfile)", () => {
  test("builds; its entrypoint is kiln, with Bun and Python 3", () => {
    const [config] = JSON.parse(podman(["image", "inspect", image.tag]).stdout) as Array<{ Config: { Entrypoint: string[]; WorkingDir: string }; Size: number }>;
    expect(config?.Config.Entrypoint).toEqual(["kiln"]);
    expect(config?.Config.WorkingDir).toBe("/home/src");
    console.log(`image size: ${((config?.Size ?? 0) / 1e6).toFixed(0)} MB`);
    const { version } = JSON.parse(podman(["run", "--rm", "--entrypoint", "cat", image.tag, "/opt/kiln/cli/package.json"]).stdout) as { version: string };
    expect(podman(["run", "--rm", image.tag, "--version"]).stdout).toBe(`kiln ${version}\n`);
    const tools = podman(["run", "--rm", "--entrypoint", "sh", image.tag, "-c", "bun --version && python3 -c 'import sys; print(sys.version_info[0])'"]).stdout.trim().split("\n");
    expect(tools[0]).toMatch(/^\d+\.\d+\.\d+$/);
    expect(tools[1]).toBe("3");
    // a usage error is still kiln's exit code 2 through the entrypoint
    const bad = podman(["run", "--rm", image.tag, "start", "/home/src/project", "--instance-type", "nonsense"], { allowFailure: true });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--instance-type");
  }, 120_000);
});

/** compose.yaml's services up over a copy of `example`, the web server answering, an admin key made, both schedulers heartbeating. */
async function composeOver(example: string): Promise<{ run: ComposeRun; url: string; auth: Record<string, string>; logs: () => string }> {
  const project = join(temp.make("kiln-compose-"), "project");
  cpSync(join(REPO_ROOT, example), project, { recursive: true, filter: (src) => !/\/\.(kiln|variables|logs)(\/|$)/.test(src) });
  const port = await freePort();
  const composePath = join(REPO_ROOT, "compose.yaml");
  const secretKey = randomBytes(32).toString("base64");
  const file = readCompose(composePath, { KILN_IMAGE: image.tag, REDIS_IMAGE: redisImage(), SQLD_IMAGE: sqldImage(), KILN_PROJECT: project, KILN_PORT: String(port), KILN_SECRET_KEY: secretKey });
  // what the file declares is what runs: the roles as command overrides of one image
  expect(Object.keys(file.services).sort()).toEqual(["redis", "scheduler_1", "scheduler_2", "sqld", "web_server"]);
  for (const name of ["web_server", "scheduler_1", "scheduler_2"]) {
    const service = file.services[name]!;
    expect(service.image).toBe(image.tag);
    expect(service.command).toEqual(["start", "/home/src/project", "--instance-type", name === "web_server" ? "web_server" : "scheduler"]);
    expect(service.volumes).toEqual([`${project}:/home/src/project`]);
    expect(service.environment).toEqual({ KILN_DATABASE_URL: "http://sqld:8080", REDIS_URL: "redis://redis:6379", KILN_SECRET_KEY: secretKey });
  }
  expect(startOrder(file).slice(0, 2).sort()).toEqual(["redis", "sqld"]);

  const run = composeUp(composePath, file);
  runs.push(run);
  const logs = () => Object.keys(run.containers).map((s) => `--- ${s}\n${run.logs(s).slice(-2500)}`).join("\n");
  const url = `http://127.0.0.1:${port}`;
  await waitFor("the web_server's /api/health", async () => (await fetch(`${url}/api/health`)).ok, 120_000, logs);

  // the first admin key, made inside the web_server's container against the shared sqld
  const made = podman(["exec", run.containers.web_server!, "kiln", "api-key", "create", "--project", "/home/src/project", "--role", "admin"]);
  const auth = { authorization: `Bearer ${made.stdout.trim().split("\n").at(-1)!}` };

  // both schedulers heartbeat in the shared database
  await waitFor(
    "two schedulers in /api/status",
    async () => {
      const body = (await (await fetch(`${url}/api/status`, { headers: auth })).json()) as { status?: { schedulers?: unknown[] } };
      return (body.status?.schedulers?.length ?? 0) >= 2;
    },
    60_000,
    logs,
  );
  // the key came from the environment: no service made a key file of its own
  expect(existsSync(join(project, ".kiln/secret.key"))).toBe(false);
  return { run, url, auth, logs };
}

/** Fires a pipeline's API trigger (synced from triggers.yaml by a scheduler) and returns the run's id. */
async function fireApiTrigger(url: string, auth: Record<string, string>, pipeline: string, trigger: string, logs: () => string): Promise<number> {
  let schedule: { id: number; token: string } | undefined;
  await waitFor(
    `the ${trigger} trigger synced from triggers.yaml`,
    async () => {
      const list = (await (await fetch(`${url}/api/pipelines/${pipeline}/pipeline_schedules`, { headers: auth })).json()) as { pipeline_schedules?: Array<{ id: number; token: string; name: string }> };
      schedule = list.pipeline_schedules?.find((s) => s.name === trigger && s.token);
      return schedule !== undefined;
    },
    60_000,
    logs,
  );
  const created = await fetch(`${url}/api/pipeline_schedules/${schedule!.id}/pipeline_runs/${schedule!.token}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ pipeline_run: { variables: { min_total: 10 } } }),
  });
  expect(created.status).toBe(201);
  return ((await created.json()) as { pipeline_run: { id: number } }).pipeline_run.id;
}

/** Waits for a pipeline run to end; returns its status. */
async function ended(url: string, auth: Record<string, string>, runId: number, logs: () => string): Promise<string> {
  let status = "";
  await waitFor(
    `run ${runId} to end`,
    async () => {
      status = ((await (await fetch(`${url}/api/pipeline_runs/${runId}`, { headers: auth })).json()) as { pipeline_run: { status: string } }).pipeline_run.status;
      return status !== "initial" && status !== "running";
    },
    120_000,
    logs,
  );
  return status;
}

describe.skipIf(missing !== null)("compose.yaml (web_server + two schedulers + Redis + sqld)", () => {
  test("its services, started as the file declares them, run an API-triggered run of the example to completed", async () => {
    const { run, url, auth, logs } = await composeOver("examples/etl");
    const runId = await fireApiTrigger(url, auth, "etl", "on_demand", logs);
    const status = await ended(url, auth, runId, logs);
    expect([status, status === "completed" ? "" : logs()]).toEqual(["completed", ""]);
    // the blocks ran in a scheduler's container and wrote into the mounted project
    const blockRuns = (await (await fetch(`${url}/api/pipeline_runs/${runId}/block_runs`, { headers: auth })).json()) as { block_runs?: Array<{ status: string }> };
    expect(blockRuns.block_runs?.length).toBeGreaterThan(0);
    expect(blockRuns.block_runs?.every((b) => b.status === "completed")).toBe(true);
    // the schedulers coordinate through compose's Redis (REDIS_URL): their leases are there
    const keys = podman(["exec", run.containers.redis!, "redis-cli", "--scan", "--pattern", "kiln:*"]).stdout.trim().split("\n").filter(Boolean);
    expect(keys.length).toBeGreaterThan(0);
    run.down();
  }, 600_000);

  test("over the Mage example project: its Python blocks run with the image's python3, and the run its exporter triggers completes too", async () => {
    const { run, url, auth, logs } = await composeOver("examples/mage_project");
    const runId = await fireApiTrigger(url, auth, "orders_etl", "orders_api", logs);
    const status = await ended(url, auth, runId, logs);
    expect([status, status === "completed" ? "" : logs()]).toEqual(["completed", ""]);
    const blockRuns = (await (await fetch(`${url}/api/pipeline_runs/${runId}/block_runs`, { headers: auth })).json()) as { block_runs?: Array<{ block_uuid: string; status: string }> };
    expect(Object.fromEntries((blockRuns.block_runs ?? []).map((b) => [b.block_uuid, b.status]))).toMatchObject({
      load_orders: "completed",
      "enrich/add_totals": "completed",
      summarize: "completed",
      trigger_downstream_pipeline: "completed",
    });
    // trigger_pipeline('downstream_pipeline', ...) from Python made a run another scheduler can take
    let downstream: { id: number; status: string } | undefined;
    await waitFor(
      "the downstream_pipeline run to complete",
      async () => {
        const list = (await (await fetch(`${url}/api/pipeline_runs?pipeline_uuid=downstream_pipeline`, { headers: auth })).json()) as { pipeline_runs?: Array<{ id: number; status: string }> };
        downstream = list.pipeline_runs?.[0];
        return downstream !== undefined && downstream.status !== "initial" && downstream.status !== "running";
      },
      120_000,
      logs,
    );
    expect([downstream?.status, downstream?.status === "completed" ? "" : logs()]).toEqual(["completed", ""]);
    run.down();
  }, 600_000);
});
