/**
 * The Cloud Run executor against a fake Cloud Run, Cloud Logging, OAuth token endpoint and
 * metadata server on 127.0.0.1 (test/helpers/fake-cloud-run.ts), which verifies the signed JWT
 * of a service-account key generated here (never a real one) and runs each execution's task as
 * a local `kiln run-block` process: the conformance suite, then request shapes, tokens, the
 * metadata server, credentials errors, config checks, and the package staying Workers-safe.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeJwt, decodeProtectedHeader, exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import { runBlockArgs, type ExecutionStatus, type Executor, type ExecutorContext, type JsonObject } from "@kiln/core";
import { runExecutorConformance, settleExecution } from "@kiln/core/conformance";
import { databaseOutputStore } from "@kiln/core/output-store";
import { cloudRunExecutor, GoogleApiError, GoogleAuthError, statusOf, type CloudRunExecutorOptions, type Execution } from "@kiln/executor-cloud-run";
import { runKiln, TempDirs } from "../helpers/cli.ts";
import { conformanceProject } from "../helpers/conformance.ts";
import { FakeCloudRun } from "../helpers/fake-cloud-run.ts";
import { REPO_ROOT } from "../helpers/fixtures.ts";
import { startLibsqlServer } from "../helpers/libsql-server.ts";

const PROJECT = "kiln-test-project";
const REGION = "europe-west1";
const JOB = "kiln-blocks";
const CLIENT_EMAIL = `kiln-runner@${PROJECT}.iam.gserviceaccount.com`;

/** A service-account key pair made for this test run; the fake knows only its public half. */
async function makeKeyPair(): Promise<{ privatePem: string; publicPem: string }> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  return { privatePem: await exportPKCS8(privateKey), publicPem: await exportSPKI(publicKey) };
}

const account = await makeKeyPair();
const fake = await new FakeCloudRun({
  project: PROJECT,
  region: REGION,
  // the image's entrypoint is kiln; the job's own args are replaced per block run
  jobs: { [JOB]: { command: ["kiln"], args: ["--version"] }, "other-job": { command: ["kiln"] } },
  serviceAccount: { clientEmail: CLIENT_EMAIL, publicKeyPem: account.publicPem },
}).start();
const sqld = await startLibsqlServer();

/** A service-account key file's JSON, as the console downloads it, with the fake's token_uri. */
function keyJson(privatePem: string, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    type: "service_account",
    project_id: PROJECT,
    private_key_id: "0123456789abcdef0123456789abcdef01234567",
    private_key: privatePem,
    client_email: CLIENT_EMAIL,
    client_id: "100000000000000000001",
    auth_uri: "https://accounts.google.com/o/oauth2/auth",
    token_uri: fake.tokenUri,
    ...overrides,
  });
}
const KEY = keyJson(account.privatePem);

const BASE_CONFIG: JsonObject = {
  job: JOB,
  region: REGION,
  endpoint: fake.url,
  logging_endpoint: fake.url,
  env: { KILN_TEST_EXTRA: "from executor_config" },
};

// blocks run "remotely": the database is a libSQL server and outputs live in it
const fixture = await conformanceProject({
  executorType: "cloud_run",
  executorConfig: BASE_CONFIG,
  databaseUrl: sqld.url,
  settings: { output_store: { type: "database" } },
  outputs: (_project, client) => databaseOutputStore(client, { maxBytes: 1_000_000 }),
});

afterAll(() => {
  fake.stop();
  fixture.close();
  sqld.stop();
});

function context(env: Record<string, string | undefined> = { GOOGLE_APPLICATION_CREDENTIALS: KEY }): ExecutorContext {
  return { projectRoot: fixture.root, blockEnv: { KILN_DATABASE_URL: sqld.url }, env, logs: { append() {} } };
}

function executor(env?: Record<string, string | undefined>, options: CloudRunExecutorOptions = {}): Executor {
  return cloudRunExecutor(context(env), options);
}

/** A job for `block` with `config` over the project's, and the project where the fake container finds it. */
async function job(block: "succeeds" | "fails" | "sleeps" | "logs", config: JsonObject = {}) {
  const made = await fixture.harness.job(block);
  made.executorConfig = { ...made.executorConfig, project_root: fixture.root, ...config };
  return made;
}

/** Polls status until the block run ends. */
const settle = (executor: Executor, handle: JsonObject, limitMs = 30_000): Promise<ExecutionStatus> => settleExecution(executor, handle, limitMs, 50);

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

describe("executor-cloud-run: conformance against the fake Cloud Run", () => {
  runExecutorConformance(
    () => executor(),
    {
      ...fixture.harness,
      job: (block) => job(block),
      stopped: async (handle) => fake.execution(String(handle.execution))?.tasks.every((task) => task.container.state === "exited") ?? false,
      invalidConfig: { config: { ...BASE_CONFIG, job: undefined }, field: "executor_config.job" },
      settleMs: 30_000,
    },
    test,
  );
});

describe("executor-cloud-run: requests", () => {
  test("jobs:run carries kiln run-block's args, the block's environment, task count and timeout; the token came from a signed JWT", async () => {
    const tokensBefore = fake.requestsTo("/token").length;
    const runsBefore = fake.requestsTo(":run").length;
    const cloudRun = executor();
    const made = await job("succeeds", { command: ["kiln", "--quiet-flag-for-test"], task_count: 1 });
    made.timeout = 90;
    const handle = await cloudRun.start(made);

    expect(String(handle.execution)).toMatch(new RegExp(`^projects/${PROJECT}/locations/${REGION}/jobs/${JOB}/executions/${JOB}-\\d+$`));
    const run = fake.requestsTo(":run").slice(runsBefore);
    expect(run).toHaveLength(1);
    expect(run[0]!.path).toBe(`/v2/projects/${PROJECT}/locations/${REGION}/jobs/${JOB}:run`);
    expect(run[0]!.headers.authorization).toMatch(/^Bearer ya29\.fake-/);
    const body = run[0]!.body as { overrides: { containerOverrides: { args: string[]; env: { name: string; value: string }[] }[]; taskCount: number; timeout: string } };
    expect(Object.keys(body)).toEqual(["overrides"]);
    expect(body.overrides.taskCount).toBe(1);
    expect(body.overrides.timeout).toBe("90s");
    expect(body.overrides.containerOverrides).toHaveLength(1);
    // the entrypoint stays the image's (kiln); the rest of command leads the args
    expect(body.overrides.containerOverrides[0]!.args).toEqual(["--quiet-flag-for-test", ...runBlockArgs(made, fixture.root)]);
    const env = Object.fromEntries(body.overrides.containerOverrides[0]!.env.map((v) => [v.name, v.value]));
    expect(env).toMatchObject({
      KILN_DATABASE_URL: sqld.url,
      KILN_BLOCK_LOGS: "stdout",
      KILN_BLOCK_RUN_ID: String(made.blockRunId),
      KILN_PIPELINE_RUN_ID: String(made.pipelineRunId),
      KILN_TEST_EXTRA: "from executor_config",
    });

    // one token exchange: a jwt-bearer grant whose assertion names the service account
    const tokenRequests = fake.requestsTo("/token").slice(tokensBefore);
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]!.headers["content-type"]).toStartWith("application/x-www-form-urlencoded");
    const form = tokenRequests[0]!.body as Record<string, string>;
    expect(form.grant_type).toBe("urn:ietf:params:oauth:grant-type:jwt-bearer");
    expect(decodeProtectedHeader(form.assertion!)).toMatchObject({ alg: "RS256", typ: "JWT", kid: "0123456789abcdef0123456789abcdef01234567" });
    const claims = decodeJwt(form.assertion!);
    expect(claims).toMatchObject({ iss: CLIENT_EMAIL, sub: CLIENT_EMAIL, aud: fake.tokenUri, scope: "https://www.googleapis.com/auth/cloud-platform" });
    expect(claims.exp! - claims.iat!).toBe(3600);

    // the unknown flag goes to kiln, which refuses it, so only the request shape is checked here;
    // the container really got the overridden args after the job's entrypoint
    const execution = fake.execution(String(handle.execution))!;
    expect(execution.tasks[0]!.container.command).toEqual(["kiln", "--quiet-flag-for-test", ...runBlockArgs(made, fixture.root)]);
    expect(execution.tasks[0]!.container.env.CLOUD_RUN_EXECUTION).toBe(String(handle.execution).split("/").pop()!);
    await settle(cloudRun, handle);
  }, 60_000);

  test("the handle holds the execution, endpoints and where the key comes from, never the key or a token", async () => {
    const handle = await executor().start(await job("succeeds"));
    expect(handle).toEqual({
      execution: expect.stringMatching(/\/executions\//),
      endpoint: fake.url,
      logging_endpoint: fake.url,
      credentials: { env: "GOOGLE_APPLICATION_CREDENTIALS" },
    });
    expect(JSON.stringify(handle)).not.toContain("PRIVATE KEY");
    expect(JSON.stringify(handle)).not.toContain("ya29");
    expect((await settle(executor(), handle)).state).toBe("completed");
  }, 60_000);

  test("one token serves many calls until it nears expiry; then a fresh JWT is exchanged before the call", async () => {
    // tokens of 400 s, renewed 5 minutes before expiry: due after 100 s of the executor's clock
    // (which also dates the JWT, so it stays inside what the token endpoint accepts)
    fake.options.tokenLifetimeSeconds = 400;
    let clock = Date.now();
    try {
      const cloudRun = executor(undefined, { now: () => clock });
      const before = fake.issued.length;
      const handle = await cloudRun.start(await job("succeeds"));
      await cloudRun.status(handle);
      clock += 90_000;
      await cloudRun.status(handle);
      expect(fake.issued.length - before).toBe(1);
      const unauthorizedBefore = fake.requests.filter((r) => r.status === 401).length;
      clock += 20_000;
      expect((await settle(cloudRun, handle)).state).toBe("completed");
      expect(fake.issued.length - before).toBe(2);
      // renewed ahead of time, not after a refusal
      expect(fake.requests.filter((r) => r.status === 401).length).toBe(unauthorizedBefore);
    } finally {
      fake.options.tokenLifetimeSeconds = undefined;
    }
  }, 60_000);

  test("a token the API stops accepting (revoked, or expired early) is replaced once and the call succeeds", async () => {
    const cloudRun = executor();
    const handle = await cloudRun.start(await job("succeeds"));
    const before = fake.issued.length;
    fake.revokeTokens();
    const statusCalls = fake.requests.length;
    expect(["running", "completed"]).toContain((await cloudRun.status(handle)).state);
    const calls = fake.requests.slice(statusCalls);
    expect(calls.map((r) => r.status)).toEqual([401, 200, 200]); // refused, new token, retried
    expect(calls[1]!.path).toBe("/token");
    expect(fake.issued.length - before).toBe(1);
    await settle(cloudRun, handle);
  }, 60_000);

  test("a failed execution's error gives the task's exit code from the tasks list", async () => {
    const cloudRun = executor();
    const handle = await cloudRun.start(await job("fails"));
    const tasksBefore = fake.requestsTo("/tasks").length;
    const status = await settle(cloudRun, handle);
    const id = String(handle.execution).split("/").pop();
    expect(status).toMatchObject({ state: "failed", error: `Cloud Run execution ${id} failed: task 0 ended with exit code 1 (The container exited with an exit code of 1.)` });
    expect(fake.requestsTo("/tasks").length - tasksBefore).toBe(1);
  }, 60_000);

  test("an unknown job is Cloud Run's 404 NOT_FOUND, naming the job", async () => {
    const error = await rejection(executor().start(await job("succeeds", { job: "no-such-job" })));
    expect(error).toBeInstanceOf(GoogleApiError);
    expect(error.message).toContain("404 NOT_FOUND");
    expect(error.message).toContain("Resource 'no-such-job' of kind 'JOB'");
  });

  test("cancel of an execution that already ended is a no-op (Cloud Run answers FAILED_PRECONDITION)", async () => {
    const cloudRun = executor();
    const handle = await cloudRun.start(await job("succeeds"));
    expect((await settle(cloudRun, handle)).state).toBe("completed");
    const before = fake.requestsTo(":cancel").length;
    await cloudRun.cancel(handle);
    const cancels = fake.requestsTo(":cancel").slice(before);
    expect(cancels.map((r) => r.status)).toEqual([400]);
    expect((await cloudRun.status(handle)).state).toBe("completed");
  }, 60_000);

  test("an execution deleted outside kiln reads as failed, saying so", async () => {
    const cloudRun = executor();
    const handle = await cloudRun.start(await job("sleeps"));
    fake.execution(String(handle.execution))!.deleted = true;
    const status = await cloudRun.status(handle);
    expect(status).toEqual({ state: "failed", error: expect.stringContaining("no longer exists") });
    for (const task of fake.execution(String(handle.execution))!.tasks) fake.containers.stop(task.container.id, 500);
  }, 60_000);

  test("logs follow entries:list's pages, and the filter names the execution", async () => {
    const cloudRun = executor();
    const handle = await cloudRun.start(await job("logs"));
    expect((await settle(cloudRun, handle)).state).toBe("completed");
    const readAll = async () => {
      const lines: string[] = [];
      for await (const line of cloudRun.logs!(handle)) lines.push(line);
      return lines;
    };
    const whole = await readAll();
    fake.options.maxPageSize = 2;
    const before = fake.requestsTo("/v2/entries:list").length;
    try {
      expect(await readAll()).toEqual(whole);
    } finally {
      fake.options.maxPageSize = undefined;
    }
    const calls = fake.requestsTo("/v2/entries:list").slice(before);
    expect(calls.length).toBe(Math.ceil(whole.length / 2));
    const id = String(handle.execution).split("/").pop();
    expect((calls[0]!.body as { filter: string }).filter).toContain(`labels."run.googleapis.com/execution_name"="${id}"`);
    expect((calls[0]!.body as { resourceNames: string[] }).resourceNames).toEqual([`projects/${PROJECT}`]);
    expect(whole.some((line) => line.includes("conformance log line"))).toBe(true);
  }, 60_000);
});

describe("executor-cloud-run: the fake holds Google's line", () => {
  test("calls without a valid token get 401 UNAUTHENTICATED in Google's envelope", async () => {
    const response = await fetch(`${fake.url}/v2/projects/${PROJECT}/locations/${REGION}/jobs/${JOB}:run`, { method: "POST", body: "{}", headers: { authorization: "Bearer ya29.made-up" } });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { code: 401, status: "UNAUTHENTICATED" } });
  });

  test("malformed overrides get 400 INVALID_ARGUMENT; the metadata server wants Metadata-Flavor", async () => {
    expect((await fetch(`${fake.url}/computeMetadata/v1/instance/service-accounts/default/token`)).status).toBe(403);
    const executionsBefore = fake.executions.size;
    const token = ((await (await fetch(`${fake.url}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { "Metadata-Flavor": "Google" } })).json()) as { access_token: string }).access_token;
    const run = (overrides: unknown) =>
      fetch(`${fake.url}/v2/projects/${PROJECT}/locations/${REGION}/jobs/${JOB}:run`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ overrides }),
      });
    for (const overrides of [
      { containerOverrides: [{ args: "run-block" }] },
      { containerOverrides: [{ env: [{ name: "1BAD", value: "x" }] }] },
      { containerOverrides: [{ env: [{ name: "A", value: 1 }] }] },
      { taskCount: 0 },
      { timeout: "90" },
      { command: ["kiln"] },
    ]) {
      const response = await run(overrides);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: 400, status: "INVALID_ARGUMENT" } });
    }
    expect(fake.executions.size).toBe(executionsBefore); // none of them started anything
  });
});

describe("executor-cloud-run: credentials", () => {
  test("on Google Cloud, the metadata server's token and project are used", async () => {
    const before = fake.issued.filter((via) => via === "metadata").length;
    const requestsBefore = fake.requests.length;
    // no key anywhere, no project in the config: both come from the metadata server
    const cloudRun = executor({}, {});
    const made = await job("succeeds", { metadata_url: fake.url });
    const handle = await cloudRun.start(made);
    expect(handle.credentials).toEqual({ metadata: fake.url });
    expect(String(handle.execution)).toStartWith(`projects/${PROJECT}/`);
    expect((await settle(executor({}), handle)).state).toBe("completed");
    expect(fake.issued.filter((via) => via === "metadata").length - before).toBeGreaterThanOrEqual(2); // one per executor
    const metadataCalls = fake.requests.slice(requestsBefore).filter((r) => r.path.startsWith("/computeMetadata/"));
    expect(metadataCalls.map((r) => r.path)).toContain("/computeMetadata/v1/project/project-id");
    expect(metadataCalls.every((r) => r.headers["metadata-flavor"] === "Google")).toBe(true);
  }, 60_000);

  test("GCE_METADATA_HOST points at the metadata server when metadata_url is unset", async () => {
    const host = fake.url.replace("http://", "");
    const handle = await executor({ GCE_METADATA_HOST: host }).start(await job("succeeds"));
    expect(handle.credentials).toEqual({ metadata: `http://${host}` });
    expect((await settle(executor({ GCE_METADATA_HOST: host }), handle)).state).toBe("completed");
  }, 60_000);

  test("a key the service account does not have is refused by the token endpoint, with a clear error and no secret in it", async () => {
    const stranger = await makeKeyPair();
    const refusalsBefore = fake.tokenRefusals.length;
    const runsBefore = fake.requestsTo(":run").length;
    const error = await rejection(executor({ GOOGLE_APPLICATION_CREDENTIALS: keyJson(stranger.privatePem) }).start(await job("succeeds")));
    expect(error).toBeInstanceOf(GoogleAuthError);
    expect(error.message).toContain("invalid_grant");
    expect(error.message).toContain("Invalid JWT Signature.");
    expect(error.message).toContain(CLIENT_EMAIL);
    expect(error.message).toContain("GOOGLE_APPLICATION_CREDENTIALS");
    expect(error.message).not.toContain("PRIVATE KEY");
    expect(error.message).not.toContain(stranger.privatePem.split("\n")[1]!);
    // the fake really checked the signature and refused it; nothing was run
    expect(fake.tokenRefusals.slice(refusalsBefore)).toEqual(["invalid_grant: Invalid JWT Signature."]);
    expect(fake.requestsTo(":run").length).toBe(runsBefore);
  });

  test("tokens the API never accepts end in a clear 401 error, without the token", async () => {
    fake.options.tokenLifetimeSeconds = 0; // every token issued is already expired
    try {
      const error = await rejection(executor().start(await job("succeeds")));
      expect(error).toBeInstanceOf(GoogleApiError);
      expect(error.message).toContain("401 UNAUTHENTICATED");
      expect(error.message).toContain("credentials were refused");
      expect(error.message).not.toContain("ya29");
    } finally {
      fake.options.tokenLifetimeSeconds = undefined;
    }
  });

  test("malformed keys and missing variables name where the key came from, never its content", async () => {
    const notAKey = await rejection(executor({ GOOGLE_APPLICATION_CREDENTIALS: keyJson("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n") }).start(await job("succeeds")));
    expect(notAKey.message).toContain("not an RSA private key in PKCS#8 PEM form");
    expect(notAKey.message).not.toContain("bm90IGEga2V5");

    const userCredentials = await rejection(executor({ GOOGLE_APPLICATION_CREDENTIALS: JSON.stringify({ type: "authorized_user", refresh_token: "1//secret" }) }).start(await job("succeeds")));
    expect(userCredentials.message).toContain('expected a key of type "service_account", got "authorized_user"');
    expect(userCredentials.message).not.toContain("1//secret");

    const unset = await rejection(executor({}).start(await job("succeeds", { credentials_env: "KILN_GCP_KEY" })));
    expect(unset.message).toContain("executor_config.credentials_env: the environment variable KILN_GCP_KEY is not set");
  });

  test("a key file: read by the host when it can read files; on a runtime that cannot (Workers), a clear error", async () => {
    const path = join(fixture.root, "service-account.json");
    writeFileSync(path, KEY);
    const readTextFile = (file: string) => Bun.file(file).text();

    const fromPath = await executor({ GOOGLE_APPLICATION_CREDENTIALS: path }, { readTextFile }).start(await job("succeeds"));
    expect((await settle(executor({ GOOGLE_APPLICATION_CREDENTIALS: path }, { readTextFile }), fromPath)).state).toBe("completed");

    const fromConfig = await executor({}, { readTextFile }).start(await job("succeeds", { credentials_file: path }));
    expect(fromConfig.credentials).toEqual({ file: path });
    expect((await settle(executor({}, { readTextFile }), fromConfig)).state).toBe("completed");

    const noFiles = await rejection(executor({ GOOGLE_APPLICATION_CREDENTIALS: path }).start(await job("succeeds")));
    expect(noFiles.message).toContain("GOOGLE_APPLICATION_CREDENTIALS holds a path, and this runtime cannot read files");
    const missing = await rejection(executor({}, { readTextFile }).start(await job("succeeds", { credentials_file: `${path}.missing` })));
    expect(missing.message).toContain("executor_config.credentials_file");
  }, 60_000);

  test("the project comes from the config over the key", async () => {
    const error = await rejection(executor().start(await job("succeeds", { project: "another-project" })));
    expect(error.message).toContain("in project 'another-project' does not exist");
  });
});

describe("executor-cloud-run: through kiln run", () => {
  const temp = new TempDirs();
  afterAll(() => temp.removeAll());

  test("a two-block pipeline runs as two executions; outputs pass through the database, logs are copied back", async () => {
    const root = temp.project({
      "kiln.yaml": [
        "executor_type: cloud_run",
        `database_url: ${sqld.url}`,
        "output_store: { type: database }",
        "executors:",
        `  cloud_run: { job: ${JOB}, region: ${REGION}, endpoint: "${fake.url}", logging_endpoint: "${fake.url}" }`,
        "",
      ].join("\n"),
      "pipelines/cr/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n  - uuid: double\n    type: transformer\n    upstream_blocks: [load]\n",
      "data_loaders/load.js": "export default function load(ctx) { ctx.logger.info('loaded on cloud run'); return [1, 2, 3]; }\n",
      "transformers/double.js": "export default function double(rows, ctx) { ctx.logger.info('doubling ' + rows.length); return rows.map((n) => n * 2); }\n",
    });
    // the key as a file, as GOOGLE_APPLICATION_CREDENTIALS usually is: the CLI reads it
    const keyFile = join(temp.make("kiln-gcp-key-"), "key.json");
    writeFileSync(keyFile, KEY);
    const runsBefore = fake.requestsTo(":run").length;
    const result = await runKiln(["run", root, "cr"], { GOOGLE_APPLICATION_CREDENTIALS: keyFile, KILN_DATABASE_URL: undefined });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);

    const runs = fake.requestsTo(":run").slice(runsBefore);
    expect(runs.map((r) => r.status)).toEqual([200, 200]);
    const argsOf = (i: number) => (runs[i]!.body as { overrides: { containerOverrides: { args: string[] }[] } }).overrides.containerOverrides[0]!.args;
    expect(argsOf(0).slice(0, 4)).toEqual(["run-block", root, "cr", "load"]);
    expect(argsOf(1).slice(0, 4)).toEqual(["run-block", root, "cr", "double"]);

    const partition = /execution partition (\S+)/.exec(result.stdout)?.[1];
    expect(partition).toBeDefined();
    const output = await databaseOutputStore(fixture.client, { maxBytes: 1_000_000 }).read("cr", partition!.replace(/,$/, ""), "double");
    expect(output).toEqual([2, 4, 6]);
    // the engine copied each block's log from Cloud Logging into the project's log files
    const log = readFileSync(join(root, ".logs/pipelines/cr", partition!.replace(/,$/, ""), "double.log"), "utf8");
    expect(log).toContain("doubling 3");
  }, 120_000);
});

describe("executor-cloud-run: reading an execution", () => {
  const NAME = `projects/${PROJECT}/locations/${REGION}/jobs/${JOB}/executions/${JOB}-abcde`;
  const completed = (state: string, extra: object = {}) => ({ type: "Completed", state, ...extra });
  const noTasks = async () => [];

  test("running until the Completed condition settles, cancelling included", async () => {
    expect(await statusOf({ name: NAME, runningCount: 1, conditions: [completed("CONDITION_PENDING")] }, noTasks)).toEqual({ state: "running" });
    expect(await statusOf({ name: NAME, runningCount: 1, conditions: [completed("CONDITION_RECONCILING", { executionReason: "CANCELLING" })] }, noTasks)).toEqual({ state: "running" });
  });

  test("cancelled by its cancelledCount or its reason, whichever Cloud Run sets", async () => {
    expect(await statusOf({ name: NAME, cancelledCount: 1, completionTime: "2026-01-01T00:00:00Z" }, noTasks)).toEqual({ state: "cancelled" });
    expect(await statusOf({ name: NAME, conditions: [completed("CONDITION_FAILED", { executionReason: "CANCELLED" })] }, noTasks)).toEqual({ state: "cancelled" });
  });

  test("without task results, the exit code comes from the condition's message", async () => {
    const execution: Execution = { name: NAME, failedCount: 1, conditions: [completed("CONDITION_FAILED", { message: "Task kiln-blocks-abcde-x7k2p failed with message: The container exited with an exit code of 3." })] };
    const status = await statusOf(execution, noTasks);
    expect(status).toMatchObject({ state: "failed", error: expect.stringContaining(`${JOB}-abcde failed with exit code 3:`) });
    // a failure that is no exit (a timeout) says what the condition says
    const timedOut = await statusOf({ name: NAME, failedCount: 1, conditions: [completed("CONDITION_FAILED", { message: "The configured timeout was reached." })] }, noTasks);
    expect(timedOut).toMatchObject({ state: "failed", error: `Cloud Run execution ${JOB}-abcde failed: The configured timeout was reached.` });
  });

  test("completed with the execution's counts as metrics", async () => {
    const status = await statusOf({ name: NAME, taskCount: 1, succeededCount: 1, completionTime: "2026-01-01T00:00:00Z" }, noTasks);
    expect(status).toEqual({ state: "completed", metrics: { cloud_run_execution: NAME, task_count: 1, succeeded_count: 1 } });
  });
});

describe("executor-cloud-run: validateConfig", () => {
  const validate = executor().validateConfig!;

  test("a complete config passes", () => {
    expect(validate({ ...BASE_CONFIG, project: PROJECT, task_count: 2, timeout: 600, command: ["bun", "/app/cli/main.ts"], project_root: "/app/project" })).toBeNull();
  });

  test.each([
    [{ region: REGION }, "executor_config.job"],
    [{ job: JOB }, "executor_config.region"],
    [{ job: "Bad_Name", region: REGION }, "executor_config.job"],
    [{ job: JOB, region: "europe" }, "executor_config.region"],
    [{ job: JOB, region: REGION, task_count: 0 }, "executor_config.task_count"],
    [{ job: JOB, region: REGION, timeout: "1h" }, "executor_config.timeout"],
    [{ job: JOB, region: REGION, command: "kiln" }, "executor_config.command"],
    [{ job: JOB, region: REGION, env: { A: 1 } }, "executor_config.env.A"],
    [{ job: JOB, region: REGION, endpoint: "run.googleapis.com" }, "executor_config.endpoint"],
    [{ job: JOB, region: REGION, credentials_env: "not a name" }, "executor_config.credentials_env"],
    [{ job: JOB, region: REGION, credentials_json: { type: "service_account", private_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" } }, "executor_config.credentials_json"],
  ] as [JsonObject, string][])("%j names %s", (config, field) => {
    const problem = validate(config);
    expect(problem).toStartWith(`${field}:`);
    // a key pasted into kiln.yaml is refused without being echoed back
    expect(problem).not.toContain("PRIVATE KEY");
  });
});

describe("executor-cloud-run: Workers-safe", () => {
  test("the package imports nothing from node: and bundles for a browser-like runtime", async () => {
    const dir = join(REPO_ROOT, "plugins/executor-cloud-run/src");
    for (const file of readdirSync(dir)) {
      expect(readFileSync(join(dir, file), "utf8")).not.toMatch(/from\s+["']node:|import\(["']node:|require\(/);
    }
    const result = await Bun.build({ entrypoints: [join(dir, "index.ts")], target: "browser", external: ["@kiln/core"] });
    expect(result.logs.filter((log) => log.level === "error")).toEqual([]);
    expect(result.success).toBe(true);
  });
});
