/**
 * A trigger defined in triggers.yaml, switched off and on again from its page in Chromium: each
 * click is written back to the file (its comments kept) by the server's writer, as `kiln start`
 * wires it, and ten syncs of the file afterwards keep what was clicked.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Project } from "@kiln/core/project";
import { syncTriggers } from "@kiln/scheduler";
import type { Browser, Page } from "playwright-core";
import { triggerFileWriter } from "../../cli/src/trigger-files.ts";
import { BROWSER_TESTS, launchChromium, screenshot, signInThroughForm, uiFixture, type UiFixture } from "./helpers.ts";

const TRIGGERS = `# triggers for etl: reviewed by the data team
triggers:
  # the morning load
  - name: morning_load
    schedule_type: time
    schedule_interval: "0 6 * * *" # 06:00 UTC
    start_time: 2026-01-01 00:00:00
    status: active
    variables:
      env: prod # the target warehouse
`;

const testBrowser = BROWSER_TESTS ? test : test.skip;

let fx: UiFixture;
let current: Project;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!BROWSER_TESTS) return;
  let writer: ReturnType<typeof triggerFileWriter> | null = null;
  fx = await uiFixture({ project: () => current, triggerFiles: { edit: (uuid, edit) => writer!.edit(uuid, edit) } }, { "pipelines/etl/triggers.yaml": TRIGGERS });
  current = fx.project;
  // as `kiln start` wires it: the project read again after a write goes to the server and the scheduler
  writer = triggerFileWriter(fx.root, fx.root, (next) => {
    current = next;
    fx.scheduler.setProject(next);
  });
  await syncTriggers(fx.store, current);
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
});

afterAll(async () => {
  try {
    await browser?.close();
  } finally {
    await fx?.close();
  }
});

const file = () => readFileSync(join(fx.root, "pipelines/etl/triggers.yaml"), "utf8");

async function row(): Promise<{ id: number; status: string; source: string }> {
  const rs = await fx.client.execute("SELECT id, status, source FROM pipeline_schedules WHERE name = 'morning_load'");
  return rs.rows[0] as unknown as { id: number; status: string; source: string };
}

async function expectStatusKept(status: "active" | "inactive"): Promise<void> {
  // the file says it, with every comment where it was
  expect(file()).toBe(TRIGGERS.replace("status: active", `status: ${status}`));
  for (let i = 0; i < 10; i++) {
    await syncTriggers(fx.store, current);
    expect((await row()).status).toBe(status);
  }
  // and the page, loaded again, shows it
  await page.reload();
  await expect(page.locator("#trigger-status").getAttribute("data-status")).resolves.toBe(status);
}

testBrowser("Deactivate then Activate on a triggers.yaml trigger's page: written to the file, comments kept, and kept through ten syncs", async () => {
  const { id, source } = await row();
  expect(source).toBe("code");
  await signInThroughForm(page, fx.url, fx.users.editor, `/ui/triggers/${id}`);
  await expect(page.locator("#trigger-status").getAttribute("data-status")).resolves.toBe("active");

  await page.getByTestId("toggle-status").click();
  await page.waitForURL((u) => u.searchParams.get("done") === "deactivated");
  await expect(page.locator("#trigger-status").getAttribute("data-status")).resolves.toBe("inactive");
  await expectStatusKept("inactive");
  await screenshot(page, "code-trigger-deactivated");

  await expect(page.getByTestId("toggle-status").textContent()).resolves.toContain("Activate");
  await page.getByTestId("toggle-status").click();
  await page.waitForURL((u) => u.searchParams.get("done") === "activated");
  await expectStatusKept("active");
}, 60_000);
