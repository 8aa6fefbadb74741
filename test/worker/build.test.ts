/**
 * `kiln build worker` and the Worker's own start checks: what a Worker cannot run is refused
 * with the file, the field, why and what to use instead; a buildable project becomes a module
 * map; and `wrangler deploy --dry-run` bundles the repository's wrangler.toml.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createWorker, type ProjectBundle, type WorkerEnv } from "@kiln/worker";
import { CLI_MAIN, REPO_ROOT, writeTempProject } from "../helpers/fixtures.ts";

const IN_PROCESS = "executor_config:\n  in_process: true\n";
const BLOCK = "export default function load() { return [1]; }\n";
const temps: string[] = [];

afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function project(files: Record<string, string>): string {
  const root = writeTempProject(files, "kiln-worker-build-");
  temps.push(root);
  return root;
}

function build(root: string, ...flags: string[]): { status: number | null; stderr: string; out: string } {
  // outside the project, so building the repository's example leaves it as it was
  const out = join(mkdtempSync(join(tmpdir(), "kiln-worker-out-")), "worker");
  temps.push(join(out, ".."));
  const child = spawnSync("bun", [CLI_MAIN, "build", "worker", root, "--out", out, ...flags], { cwd: REPO_ROOT, encoding: "utf8" });
  return { status: child.status, stderr: child.stderr, out };
}

describe("kiln build worker refuses what a Worker cannot run", () => {
  test("an @always_on trigger", () => {
    const root = project({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n",
      "pipelines/p/triggers.yaml": "triggers:\n  - name: ok\n    schedule_type: time\n    schedule_interval: '@hourly'\n  - name: stream\n    schedule_type: time\n    schedule_interval: '@always_on'\n",
      "data_loaders/load.js": BLOCK,
    });
    const result = build(root);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("cannot run on Cloudflare Workers");
    expect(result.stderr).toContain("pipelines/p/triggers.yaml: triggers[1].schedule_interval: @always_on needs a process that never stops");
    expect(result.stderr).toContain("use a cron expression");
    expect(existsSync(result.out)).toBe(false);
  });

  test("the local executor's process per block, and the docker executor", () => {
    const root = project({
      "kiln.yaml": "executor_type: local\n",
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n  - uuid: pack\n    type: transformer\n    upstream_blocks: [load]\n    executor_type: docker\n",
      "data_loaders/load.js": BLOCK,
      "transformers/pack.js": BLOCK,
    });
    const result = build(root);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("pipelines/p/metadata.yaml: block load: executor_type local: the local executor starts a process per block run, and a Worker cannot start processes");
    expect(result.stderr).toContain("executor_config: {in_process: true}");
    expect(result.stderr).toContain("pipelines/p/metadata.yaml: block pack: executor_type docker: the docker executor needs a Docker Engine");
  });

  test("blocks on ecs, cloud_run and k8s build (the Worker drives them over fetch), but only with an output store their containers reach", () => {
    const files = (outputStore: string) => ({
      "kiln.yaml": `${IN_PROCESS}${outputStore}executors:\n  ecs: { cluster: etl, task_definition: kiln, subnets: [subnet-1], region: eu-west-1 }\n  cloud_run: { job: kiln, project: p, region: europe-west1 }\n  k8s: { image: registry.example/kiln:1 }\n`,
      "pipelines/p/metadata.yaml":
        "blocks:\n  - uuid: load\n    type: data_loader\n    executor_type: ecs\n  - uuid: clean\n    type: transformer\n    executor_type: cloud_run\n    upstream_blocks: [load]\n  - uuid: save\n    type: data_exporter\n    executor_type: k8s\n    upstream_blocks: [clean]\n",
      "data_loaders/load.js": BLOCK,
      "transformers/clean.js": BLOCK,
      "data_exporters/save.js": BLOCK,
    });
    const local = build(project(files("")));
    expect(local.status).toBe(2);
    for (const block of ["load", "clean", "save"]) expect(local.stderr).toContain(`kiln.yaml: output_store (block ${block} runs on`);
    expect(local.stderr).toContain("set output_store to {type: database}");
    expect(local.stderr).not.toContain("executor_type ecs:");

    const built = build(project(files("output_store: { type: database }\n")));
    expect(built.stderr).toContain("built the Worker entry");
    expect(built.status).toBe(0);
    expect(existsSync(built.out)).toBe(true);
    // the executors the blocks name are imported into the bundle, and only they
    const moduleMap = readFileSync(join(built.out, "project.ts"), "utf8");
    for (const pkg of ["@kiln/executor-ecs", "@kiln/executor-cloud-run", "@kiln/executor-kubernetes"]) expect(moduleMap).toContain(`from "${pkg}"`);
    expect(built.stderr).toContain("executors cloud_run, ecs, k8s");
    const k8sOnly = build(project({ ...files("output_store: { type: database }\n"), "pipelines/p/metadata.yaml": "blocks:\n  - uuid: save\n    type: data_exporter\n    executor_type: k8s\n", "data_exporters/save.js": BLOCK }));
    expect(k8sOnly.status).toBe(0);
    const k8sMap = readFileSync(join(k8sOnly.out, "project.ts"), "utf8");
    expect(k8sMap).toContain('from "@kiln/executor-kubernetes"');
    expect(k8sMap).not.toContain("@kiln/executor-ecs");
    // the AWS SDK comes with ecs alone: a bundle without it is that much smaller
    const kib = (stderr: string) => Number(/bundle (\d+) KiB/.exec(stderr)?.[1]);
    expect(kib(built.stderr) - kib(k8sOnly.stderr)).toBeGreaterThan(300);
  }, 60_000);

  test("a block timeout that cannot fit in one tick where the block runs, by block, against --tick-seconds and --grace-seconds", () => {
    const files = {
      "kiln.yaml": `${IN_PROCESS}output_store: { type: database }\nexecutors:\n  k8s: { image: registry.example/kiln:1 }\n`,
      "pipelines/p/metadata.yaml":
        "blocks:\n  - uuid: long\n    type: data_loader\n    timeout: 120\n  - uuid: remote\n    type: transformer\n    executor_type: k8s\n    timeout: 3600\n    upstream_blocks: [long]\n  - uuid: short\n    type: data_exporter\n    timeout: 30\n    upstream_blocks: [remote]\n",
      "data_loaders/long.js": BLOCK,
      "transformers/remote.js": BLOCK,
      "data_exporters/short.js": BLOCK,
    };
    const refused = build(project(files));
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain("pipelines/p/metadata.yaml: block long: timeout: timeout 120 s cannot fit in one invocation of the Worker's scheduler, where this block runs (a tick of 45 s plus 10 s of grace, 55 s)");
    expect(refused.stderr).toContain("run it as a Cloudflare Workflows step (executor_type workflows), which outlives the tick, or on a remote executor");
    // on k8s the block runs in a container, which no tick bounds; 30 s fits in a tick
    expect(refused.stderr).not.toContain("block remote");
    expect(refused.stderr).not.toContain("block short");
    expect(build(project(files), "--tick-seconds", "100", "--grace-seconds", "20").status).toBe(0);
    expect(build(project(files), "--grace-seconds", "never").stderr).toContain("--grace-seconds: expected a positive number");
  }, 60_000);

  test("on executor_type workflows a timeout longer than a tick builds; no timeout, a Python block, and an uncapped backoff are named", () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml":
        "blocks:\n  - uuid: long\n    type: data_loader\n    executor_type: workflows\n    timeout: 3600\n    retry_config: { retries: 6, delay: 10, max_delay: 60 }\n  - uuid: after\n    type: transformer\n    timeout: 30\n    upstream_blocks: [long]\n",
      "data_loaders/long.js": BLOCK,
      "transformers/after.js": BLOCK,
    };
    // an hour is far past a tick (45 s + 10 s): a Workflows step outlives the tick, so it builds
    const built = build(project(files));
    expect(built.stderr).toContain("built the Worker entry");
    expect(built.status).toBe(0);
    // the entry exports the Workflow class wrangler.toml's [[workflows]] names
    expect(readFileSync(join(built.out, "index.ts"), "utf8")).toContain("export const KilnBlockWorkflow = createBlockWorkflow(project);");
    // kiln caps each wait at max_delay; Workflows' exponential backoff cannot: said, not dropped
    expect(built.stderr).toContain(
      "kiln: warning: pipelines/p/metadata.yaml: block long: retry_config.max_delay (60 s) is not acted on under executor_type workflows: Workflows doubles the wait after each failed attempt without a cap, so its last wait is 320 s",
    );
    const untimed = build(
      project({
        ...files,
        "pipelines/p/metadata.yaml": "blocks:\n  - uuid: long\n    type: data_loader\n    executor_type: workflows\n  - uuid: clean\n    type: transformer\n    executor_type: workflows\n    timeout: 60\n    upstream_blocks: [long]\n",
        "transformers/clean.py": "@transformer\ndef clean(*args, **kwargs):\n    return [1]\n",
      }),
    );
    expect(untimed.status).toBe(2);
    expect(untimed.stderr).toContain("pipelines/p/metadata.yaml: block long: timeout: a block on executor_type workflows runs as a Cloudflare Workflows step, which always has a timeout (Workflows' default is 10 minutes): set timeout");
    expect(untimed.stderr).toContain("pipelines/p/metadata.yaml: block clean: transformers/clean.py: a Python block cannot run inside a Worker");
    expect(existsSync(untimed.out)).toBe(false);
  }, 60_000);

  test("Python blocks, by name, unless a remote executor runs them; Python callbacks and conditionals", () => {
    const PY = "@data_loader\ndef load(*args, **kwargs):\n    return [1]\n";
    const refused = build(
      project({
        "kiln.yaml": `${IN_PROCESS}output_store: { type: database }\nexecutors:\n  k8s: { image: registry.example/kiln:1 }\n`,
        "pipelines/p/metadata.yaml":
          "blocks:\n  - uuid: load\n    type: data_loader\n  - uuid: clean\n    type: transformer\n    executor_type: k8s\n    upstream_blocks: [load]\n  - uuid: ts\n    type: data_exporter\n    upstream_blocks: [clean]\ncallbacks:\n  - uuid: tell\n    upstream_blocks: [ts]\n",
        "data_loaders/load.py": PY,
        "transformers/clean.py": PY,
        "data_exporters/ts.js": BLOCK,
        "callbacks/tell.py": "@callback('success')\ndef ok(*args, **kwargs):\n    pass\n",
      }),
    );
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain("pipelines/p/metadata.yaml: block load: data_loaders/load.py: a Python block cannot run inside a Worker (there is no interpreter): give it a remote executor");
    expect(refused.stderr).toContain("pipelines/p/metadata.yaml: callback tell: callbacks/tell.py: a Python callback runs in kiln's own process");
    // on k8s its container runs it
    expect(refused.stderr).not.toContain("block clean");
    expect(refused.stderr).not.toContain("block ts");

    const built = build(
      project({
        "kiln.yaml": `${IN_PROCESS}output_store: { type: database }\nexecutors:\n  k8s: { image: registry.example/kiln:1 }\n`,
        "pipelines/p/metadata.yaml": "blocks:\n  - uuid: clean\n    type: transformer\n    executor_type: k8s\n  - uuid: ts\n    type: data_exporter\n    upstream_blocks: [clean]\n",
        "transformers/clean.py": PY,
        "data_exporters/ts.js": BLOCK,
      }),
    );
    expect(built.stderr).toContain("built the Worker entry");
    expect(built.status).toBe(0);
    const moduleMap = readFileSync(join(built.out, "project.ts"), "utf8");
    expect(moduleMap).toContain('"data_exporters/ts.js": block0');
    expect(moduleMap).not.toContain("clean.py");
  });

  test("a sensor that may poll longer than a tick, measured against --tick-seconds", () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: wait_for_file\n    type: sensor\n    timeout: 40\n  - uuid: forever\n    type: sensor\n",
      "sensors/wait_for_file.js": "export default function () { return true; }\n",
      "sensors/forever.js": "export default function () { return true; }\n",
    };
    const result = build(project(files), "--tick-seconds", "30");
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("block wait_for_file: timeout: a sensor in a Worker must end within one tick (30 s), and it has timeout 40 s");
    expect(result.stderr).toContain("block forever: timeout: a sensor in a Worker must end within one tick (30 s), and it has no timeout");
    expect(result.stderr).toContain("retry_config retries so later ticks poll again");
    const fitting = { ...files, "pipelines/p/metadata.yaml": "blocks:\n  - uuid: wait_for_file\n    type: sensor\n    timeout: 40\n" };
    expect(build(project(fitting), "--tick-seconds", "40").status).toBe(0);
  });

  test("bad input is exit code 2 naming the flag or the file", () => {
    expect(build(project({ "kiln.yaml": IN_PROCESS }), "--tick-seconds", "soon").stderr).toContain("--tick-seconds: expected a positive number");
    const broken = build(project({ "kiln.yaml": IN_PROCESS, "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: loader\n" }));
    expect(broken.status).toBe(2);
    expect(broken.stderr).toContain("pipelines/p/metadata.yaml: blocks[0].type");
    const nowhere = spawnSync("bun", [CLI_MAIN, "build", "worker", join(tmpdir(), "no-such-kiln-project")], { encoding: "utf8" });
    expect(nowhere.status).toBe(2);
    expect(nowhere.stderr).toContain("no project at");
    expect(spawnSync("bun", [CLI_MAIN, "build", "lambda", "."], { encoding: "utf8" }).stderr).toContain("usage: kiln build worker");
  });
});

describe("a buildable project", () => {
  test("becomes an entry and a module map of its YAML files and block modules", () => {
    const result = build(join(REPO_ROOT, "examples/edge"));
    expect(result.status).toBe(0);
    const module = readFileSync(join(result.out, "project.ts"), "utf8");
    expect(module).toContain('"pipelines/orders/metadata.yaml":');
    expect(module).toContain('"pipelines/orders/triggers.yaml":');
    expect(module).toMatch(/import \* as block0 from "[./]+\/.*examples\/edge\/data_loaders\/load_orders\.ts";/);
    expect(module).toContain('"transformers/total_by_customer.ts": block1,');
    const entry = readFileSync(join(result.out, "index.ts"), "utf8");
    expect(entry).toContain("export default createWorker(project);");
    expect(entry).toContain("export const KilnScheduler = createSchedulerObject(project);");
    // no block names a remote executor: none is imported, so none is bundled
    expect(module).not.toContain("@kiln/executor-");
    expect(result.stderr).toMatch(/bundle \d+ KiB, \d+ KiB gzipped: \d+% of the Free plan's 3072 KiB limit, \d+% of the Paid plan's 10240 KiB/);
  });

  test("wrangler deploy --dry-run bundles the repository's Worker (wrangler.toml), without Redis or node-only modules", () => {
    const outdir = mkdtempSync(join(tmpdir(), "kiln-wrangler-dist-"));
    temps.push(outdir);
    const child = spawnSync(join(REPO_ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", outdir], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" },
      timeout: 120_000,
    });
    expect(`${child.stdout}${child.stderr}`).toContain("--dry-run: exiting now.");
    expect(child.status).toBe(0);
    const bundle = readFileSync(join(outdir, "index.js"), "utf8");
    expect(bundle).toContain("createWorker");
    expect(bundle).not.toContain("ioredis");
    expect(bundle).not.toContain("node:child_process");
  }, 120_000);
});

describe("the Worker checks its project and settings at start", () => {
  const refused: ProjectBundle = {
    root: "refused",
    files: {
      "kiln.yaml": "executor_type: local\n",
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n",
      "pipelines/p/triggers.yaml": "triggers:\n  - name: stream\n    schedule_type: time\n    schedule_interval: '@always_on'\n",
    },
    modules: { "data_loaders/load.js": { default: () => [1] } },
  };
  const ctx = { waitUntil() {} };

  test("a bundle made some other way with refused features answers 503 with every reason", async () => {
    const worker = createWorker(refused);
    const response = await worker.fetch(new Request("http://kiln/api/health"), { LIBSQL_URL: "http://127.0.0.1:9" }, ctx);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("worker_misconfigured");
    expect(body.error.message).toContain("pipelines/p/triggers.yaml: triggers[0].schedule_interval: @always_on needs a process that never stops");
    expect(body.error.message).toContain("block load: executor_type local: the local executor starts a process per block run");
    // the cron firing only wakes the scheduler object, and says what wrangler.toml lacks without one
    await expect(worker.scheduled({ cron: "* * * * *", scheduledTime: Date.now() }, {}, ctx)).rejects.toThrow("KILN_SCHEDULER is not bound");
  });

  test("a missing or file: LIBSQL_URL, or a bad tick length, says what to set", async () => {
    const fine: ProjectBundle = { ...refused, files: { "kiln.yaml": IN_PROCESS, "pipelines/p/metadata.yaml": refused.files["pipelines/p/metadata.yaml"]! } };
    const answer = async (env: WorkerEnv) => {
      const response = await createWorker(fine).fetch(new Request("http://kiln/api/health"), env, ctx);
      expect(response.status).toBe(503);
      return ((await response.json()) as { error: { message: string } }).error.message;
    };
    expect(await answer({})).toContain("no database: bind a D1 database as DB");
    expect(await answer({ LIBSQL_URL: "file:kiln.db" })).toContain("a Worker has no disk");
    expect(await answer({ LIBSQL_URL: "http://127.0.0.1:9", KILN_TICK_SECONDS: "-1" })).toContain("KILN_TICK_SECONDS: expected a positive number of seconds");
  });

  test("a project with blocks on executor_type workflows and no KILN_BLOCKS binding says what wrangler.toml lacks", async () => {
    const flows: ProjectBundle = {
      ...refused,
      files: { "kiln.yaml": IN_PROCESS, "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n    executor_type: workflows\n    timeout: 600\n" },
    };
    const response = await createWorker(flows).fetch(new Request("http://kiln/api/health"), { LIBSQL_URL: "http://127.0.0.1:9" }, ctx);
    expect(response.status).toBe(503);
    const message = ((await response.json()) as { error: { message: string } }).error.message;
    expect(message).toContain("KILN_BLOCKS is not bound: blocks on executor_type workflows run as Cloudflare Workflows steps");
    expect(message).toContain('[[workflows]] name = "kiln-blocks", binding = "KILN_BLOCKS", class_name = "KilnBlockWorkflow"');
  });
});
