/**
 * The web UI under test: the real server (test/helpers/server.ts) over a project with a quick
 * pipeline, a slow one that waits until cancelled, and triggers of each kind; users per role;
 * and Debian's Chromium driven by playwright-core. Under CI=true a browser that cannot start
 * fails the tests; elsewhere, without /usr/bin/chromium, the browser tests are skipped.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type PipelineSchedule } from "@kiln/core";
import { createSchedule } from "@kiln/core/api";
import { createUser, type Role } from "@kiln/core/auth";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import type { Browser, Page } from "playwright-core";
import { REPO_ROOT } from "../helpers/fixtures.ts";
import { serverFixture, SERVER_PROJECT, type ServerFixture } from "../helpers/server.ts";

export const CHROMIUM = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
/** Whether this machine can run the browser tests; under CI they run (and fail) regardless. */
export const BROWSER_TESTS = process.env.CI === "true" || existsSync(CHROMIUM);
/** Where the browser tests leave their screenshots. */
export const ARTIFACTS = process.env.KILN_TEST_ARTIFACTS ?? join(REPO_ROOT, "test-artifacts", "ui");

export const PASSWORD = "correct horse battery";

/** The UI test project: `etl` (two quick blocks that log) and `slow` (one block that waits up to 60 s or until cancelled). */
export const UI_PROJECT: Record<string, string> = {
  ...SERVER_PROJECT,
  // held at a gate the test opens (blocks run in this process), so a page sees the run live first
  "data_loaders/load.js":
    "export default async function load(ctx) {\n" +
    "  ctx.logger.info('loading rows');\n" +
    "  if (globalThis.__kilnUiGate) await globalThis.__kilnUiGate;\n" +
    "  ctx.logger.info('loaded 3 rows');\n" +
    "  return { rows: [1, 2, 3], event: ctx.event ?? null };\n" +
    "}\n",
  "pipelines/slow/metadata.yaml": "name: Slow\nblocks:\n  - uuid: wait\n    type: custom\n",
  "custom/wait.js":
    "export default async function wait(ctx) {\n" +
    "  ctx.logger.info('waiting for the signal');\n" +
    "  await new Promise((resolve) => { const t = setTimeout(resolve, 60000); ctx.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }); });\n" +
    "  return null;\n" +
    "}\n",
  "pipelines/flaky/metadata.yaml": "name: Flaky\nblocks:\n  - uuid: check\n    type: custom\n  - uuid: report\n    type: custom\n    upstream_blocks: [check]\n",
  "custom/check.js": "export default function check(ctx) { if (globalThis.__kilnUiFail) throw new Error('check failed on purpose'); ctx.logger.info('check passed'); return 1; }\n",
  "custom/report.js": "export default function report(n) { return n + 1; }\n",
};

/** Holds the `etl` pipeline's load block after its first log line until the returned function is called. */
export function closeGate(): () => void {
  const holder = globalThis as { __kilnUiGate?: Promise<void> };
  let open = () => {};
  holder.__kilnUiGate = new Promise<void>((resolve) => {
    open = resolve;
  });
  return () => {
    delete holder.__kilnUiGate;
    open();
  };
}

/** Makes the `flaky` pipeline's check block fail (true) or pass (false). */
export function setFlaky(fail: boolean): void {
  (globalThis as { __kilnUiFail?: boolean }).__kilnUiFail = fail;
}

export interface UiFixture extends ServerFixture {
  apiTrigger: PipelineSchedule;
  /** The API trigger's token (sealed in the database), as an editor is shown it. */
  apiToken: string;
  slowTrigger: PipelineSchedule;
  timeTrigger: PipelineSchedule;
  /** The key the server encrypts secrets with. */
  secretKey: CryptoKey;
  /** A username per role, all with PASSWORD. */
  users: Record<Role, string>;
}

/** The server with the UI project (plus `files`), its triggers and one user per role. */
export async function uiFixture(options: Parameters<typeof serverFixture>[1] = {}, files: Record<string, string> = {}): Promise<UiFixture> {
  const secretKey = await importSecretKey(generateSecretKey());
  const fx = await serverFixture({ ...UI_PROJECT, ...files }, { secretKey, ...options });
  try {
    const apiTrigger = await createSchedule(fx.store, fx.project, { name: "on_demand", pipelineUuid: "etl", scheduleType: "api", status: "active" });
    const slowTrigger = await createSchedule(fx.store, fx.project, { name: "slow_api", pipelineUuid: "slow", scheduleType: "api", status: "active" });
    const timeTrigger = await createSchedule(fx.store, fx.project, {
      name: "nightly",
      pipelineUuid: "etl",
      scheduleType: "time",
      scheduleInterval: "30 2 * * *",
      timezone: "America/New_York",
      status: "inactive",
    });
    const users = {} as Record<Role, string>;
    for (const role of ["viewer", "editor", "admin"] as const) {
      users[role] = `ui-${role}`;
      // a low PBKDF2 cost: these users only exist for the test
      await createUser(fx.client, { username: users[role], password: PASSWORD, role }, Date.now(), { iterations: 1000 });
    }
    const apiToken = await fx.store.revealTriggerToken(apiTrigger.id);
    if (apiToken === null) throw new Error("the API trigger has no token");
    return { ...fx, apiTrigger, apiToken, slowTrigger, timeTrigger, users, secretKey };
  } catch (error) {
    await fx.close();
    throw error;
  }
}

/** Starts headless Chromium with the flags this machine needs (playwright-core is loaded only here, so the HTTP tests run without it). */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}

/** Saves a full-page screenshot as `<ARTIFACTS>/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Signs in through the login form and lands on `next` (the overview by default). */
export async function signInThroughForm(page: Page, url: string, username: string, next = "/ui"): Promise<void> {
  await page.goto(`${url}/ui/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => u.pathname === next.split("?")[0]);
}

/** A form POST as a browser on the same origin would send it, with the session cookie; no redirect followed. */
export async function postForm(url: string, path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/** Signs in over HTTP and answers the session cookie (`kiln_session=...`) and the page's CSRF token. */
export async function signInOverHttp(url: string, username: string): Promise<{ cookie: string; csrf: string }> {
  const response = await postForm(url, "/ui/login", { username, password: PASSWORD, next: "/ui" }, { origin: url });
  const setCookie = response.headers.get("set-cookie") ?? "";
  const match = /kiln_session=([^;]+)/.exec(setCookie);
  if (response.status !== 303 || !match) throw new Error(`sign-in answered ${response.status} with set-cookie ${JSON.stringify(setCookie)}`);
  const cookie = `kiln_session=${match[1]}`;
  const page = await (await fetch(`${url}/ui/pipelines`, { headers: { cookie } })).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1];
  if (!csrf) throw new Error("no CSRF token on the page");
  return { cookie, csrf };
}
