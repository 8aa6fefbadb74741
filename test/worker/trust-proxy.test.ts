/**
 * KILN_TRUST_PROXY on the Workers entry, as on `kiln start`: without it X-Forwarded-* are
 * ignored; with it the trigger page's URL uses the forwarded scheme and host, and the sign-in
 * throttle counts the client a proxy of the user's own names (the X-Forwarded-For entry before
 * the one Cloudflare appends), not the proxy. A value that is not true or false is a 503 naming
 * it. The Worker's fetch runs in this process against a real sqld.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createClient } from "@libsql/client";
import { createUser } from "@kiln/core/auth";
import { generateSecretKey } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import { createWorker, type ProjectBundle, type WorkerEnv } from "@kiln/worker";
import { startLibsqlServer, type LibsqlServer } from "../helpers/libsql-server.ts";

const bundle: ProjectBundle = {
  root: "proxied",
  files: {
    "kiln.yaml": "executor_config:\n  in_process: true\n",
    "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n",
  },
  modules: { "data_loaders/load.js": { default: () => [1] } },
};
const ctx = { waitUntil() {} };

let sqld: LibsqlServer;
let secretKey: string;
beforeAll(async () => {
  sqld = await startLibsqlServer();
  secretKey = generateSecretKey();
  const client = createClient({ url: sqld.url });
  await Store.open(client);
  await createUser(client, { username: "victim", password: "correct horse battery", role: "admin" }, Date.now(), { iterations: 1000 });
  client.close();
});
afterAll(() => sqld?.stop());

const PROXIED = { "x-forwarded-proto": "https", "x-forwarded-host": "kiln.example.org" };

test("the trigger page's URL takes the forwarded scheme and host only with KILN_TRUST_PROXY=true; another value is a 503 naming it", async () => {
  const worker = createWorker(bundle);
  const base: WorkerEnv = { LIBSQL_URL: sqld.url, KILN_SECRET_KEY: secretKey, KILN_AUTH: "off" };
  const created = await worker.fetch(
    new Request("http://kiln.internal/api/pipelines/p/pipeline_schedules", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ pipeline_schedule: { name: "hook", schedule_type: "api", status: "active" } }) }),
    base,
    ctx,
  );
  expect(created.status).toBe(201);
  const { id, token } = ((await created.json()) as { pipeline_schedule: { id: number; token: string } }).pipeline_schedule;
  const page = async (env: WorkerEnv) => (await worker.fetch(new Request(`http://kiln.internal/ui/triggers/${id}`, { headers: PROXIED }), env, ctx)).text();

  const trusted = await page({ ...base, KILN_TRUST_PROXY: "true" });
  expect(trusted).toContain(`https://kiln.example.org/api/pipeline_schedules/${id}/pipeline_runs/${token}`);
  const untrusted = await page(base);
  expect(untrusted).toContain(`http://kiln.internal/api/pipeline_schedules/${id}/pipeline_runs/${token}`);
  expect(untrusted).not.toContain("kiln.example.org");

  const bad = await worker.fetch(new Request("http://kiln.internal/api/health"), { ...base, KILN_TRUST_PROXY: "maybe" }, ctx);
  expect(bad.status).toBe(503);
  expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("KILN_TRUST_PROXY");
});

test("behind a trusted proxy, failures from one client do not throttle another client's correct sign-in through the same proxy", async () => {
  const worker = createWorker(bundle);
  const env: WorkerEnv = { LIBSQL_URL: sqld.url, KILN_SECRET_KEY: secretKey, KILN_TRUST_PROXY: "true" };
  // the proxy (203.0.113.9) appends the client's address; Cloudflare appends the proxy's and says it connected
  const signIn = (client: string, password: string) =>
    worker.fetch(
      new Request("https://kiln.example.org/api/sessions", {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": `${client}, 203.0.113.9`, "cf-connecting-ip": "203.0.113.9" },
        body: JSON.stringify({ session: { username: "victim", password } }),
      }),
      env,
      ctx,
    );
  let throttled = false;
  for (let i = 0; i < 12 && !throttled; i++) throttled = (await signIn("198.51.100.7", "wrong password")).status === 429;
  expect(throttled).toBe(true);
  // the attacker is throttled even with the right password; the user, from another client, is not
  expect((await signIn("198.51.100.7", "correct horse battery")).status).toBe(429);
  expect((await signIn("192.0.2.44", "correct horse battery")).status).toBe(201);
});
