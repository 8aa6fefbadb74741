/**
 * The web UI end to end in Debian's Chromium against the real server on a free port: sign in,
 * run a pipeline from its trigger page and watch its run complete without a reload, read a
 * block's log line, cancel a long run, create a backfill from its preview, and the keyboard and
 * narrow-window basics. One browser for the file; each test leaves a screenshot in ARTIFACTS.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { BROWSER_TESTS, closeGate, launchChromium, screenshot, signInThroughForm, uiFixture, type UiFixture } from "./helpers.ts";

const describeBrowser = BROWSER_TESTS ? describe : describe.skip;

describeBrowser("web UI in Chromium", () => {
  let fx: UiFixture;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Script errors and refused resources (a CSP violation shows here) on any page of the file. */
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    fx = await uiFixture();
    browser = await launchChromium();
    // a zone far from UTC, so a time shown in the viewer's zone is told apart from the UTC one
    context = await browser.newContext({ timezoneId: "Asia/Tokyo", locale: "en-US", viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
    // the cancel button asks for confirmation
    page.on("dialog", (dialog) => void dialog.accept());
    context.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(`${message.location().url}: ${message.text()}`);
    });
    context.on("weberror", (error) => consoleErrors.push(error.error().message));
  });

  afterAll(async () => {
    try {
      await browser?.close();
    } finally {
      await fx?.close();
    }
  });

  test("signs in through the login form; the session cookie is HttpOnly and SameSite=Strict", async () => {
    await page.goto(`${fx.url}/ui/runs`);
    expect(new URL(page.url()).pathname).toBe("/ui/login");
    await page.getByLabel("Username").fill(fx.users.editor);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toContain("Invalid username or password");
    await signInThroughForm(page, fx.url, fx.users.editor, "/ui/runs");
    await expect(page.locator("h1").textContent()).resolves.toBe("Runs");
    const cookie = (await context.cookies()).find((c) => c.name === "kiln_session");
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe("Strict");
    // the script cannot read it
    expect(await page.evaluate<string>("document.cookie")).not.toContain("kiln_session");
    await screenshot(page, "01-signed-in");
  });

  test("runs a pipeline from its trigger page; the run page turns completed without a reload and shows a block's log line", async () => {
    await page.goto(`${fx.url}/ui/triggers/${fx.apiTrigger.id}`);
    // the API-trigger URL and curl example carry the trigger's token
    await expect(page.getByTestId("curl").textContent()).resolves.toContain(`/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs/${fx.apiToken}`);
    const open = closeGate();
    try {
      await page.getByTestId("run-now").click();
      await page.waitForURL(/\/ui\/runs\/\d+$/);
      // a mark on this document: a reload would lose it
      await page.evaluate("window.kilnMark = 1");
      // the load block logged its first line and waits at the gate: the page shows the run live
      await page.locator('details.block-log[data-block="load"] pre').getByText("loading rows").waitFor({ timeout: 20_000 });
      await page.getByTestId("run-status").locator('[data-status="running"]').waitFor({ timeout: 10_000 });
      await screenshot(page, "02-run-running");
    } finally {
      open();
    }
    const runId = Number(new URL(page.url()).pathname.split("/").pop());
    await page.getByTestId("run-status").locator('[data-status="completed"]').waitFor({ timeout: 20_000 });
    expect(await page.evaluate<number | undefined>("window.kilnMark")).toBe(1);
    // each block of the DAG is on the timeline
    await expect(page.getByTestId("gantt").locator("g.gantt-row").count()).resolves.toBe(2);
    // the load block's log, streamed into its own panel
    const log = page.locator('details.block-log[data-block="load"] pre');
    await log.getByText("loaded 3 rows").waitFor({ timeout: 10_000 });
    await expect(page.locator('[data-testid="logs"][data-stream-done="1"]').count()).resolves.toBe(1);
    // the store agrees with what the page shows
    expect((await fx.store.getPipelineRun(runId))?.status).toBe("completed");
    // times are in the viewer's zone (Tokyo), with UTC on hover
    const time = page.getByTestId("run-live").locator("time[data-local]").first();
    await expect(time.textContent()).resolves.toMatch(/GMT\+9/);
    await expect(time.getAttribute("title")).resolves.toMatch(/UTC$/);
    await screenshot(page, "03-run-completed");
  });

  test("cancels a long run from its page", async () => {
    await page.goto(`${fx.url}/ui/triggers/${fx.slowTrigger.id}`);
    await page.getByTestId("run-now").click();
    await page.waitForURL(/\/ui\/runs\/\d+$/);
    const runId = Number(new URL(page.url()).pathname.split("/").pop());
    // the block starts and logs; the page learns it from the streams
    await page.getByTestId("run-status").locator('[data-status="running"]').waitFor({ timeout: 20_000 });
    await page.locator('details.block-log[data-block="wait"] pre').getByText("waiting for the signal").waitFor({ timeout: 10_000 });
    await page.getByTestId("cancel-run").click();
    await page.waitForURL(/done=cancelled/);
    await page.getByTestId("run-status").locator('[data-status="cancelled"]').waitFor({ timeout: 10_000 });
    expect((await fx.store.getPipelineRun(runId))?.status).toBe("cancelled");
    const blocks = await fx.store.getBlockRuns(runId);
    expect(blocks.map((b) => b.status)).toEqual(["cancelled"]);
    // an ended run offers a retry instead
    await expect(page.getByTestId("retry-run").count()).resolves.toBe(1);
    await screenshot(page, "04-run-cancelled");
  });

  test("creates a backfill from its preview and follows its progress live", async () => {
    await page.goto(`${fx.url}/ui/backfills`);
    const form = page.getByTestId("backfill-form");
    await form.getByLabel("Pipeline").selectOption("etl");
    await form.getByLabel("Name").fill("january");
    await form.getByLabel("Start (UTC)").fill("2026-01-01");
    await form.getByLabel("End, inclusive (UTC)").fill("2026-01-03");
    await form.getByLabel("Interval").selectOption("day");
    await form.getByTestId("preview").click();
    await page.waitForURL(/\/ui\/backfills\/preview\?/);
    await expect(page.getByTestId("preview-count").textContent()).resolves.toContain("create 3 pipeline runs");
    await expect(page.getByTestId("preview-dates").locator("tbody tr").count()).resolves.toBe(3);
    await screenshot(page, "05-backfill-preview");
    // nothing exists until it is created
    expect((await fx.store.listPipelineRuns({ pipelineUuid: "etl", status: "initial" })).items.filter((r) => r.backfillId !== null)).toHaveLength(0);
    await page.getByTestId("create-backfill").click();
    await page.waitForURL(/\/ui\/backfills\/\d+\?done=started$/);
    await page.getByTestId("backfill-status").locator('[data-status="completed"]').waitFor({ timeout: 30_000 });
    await expect(page.getByTestId("backfill-progress").getAttribute("value")).resolves.toBe("3");
    await expect(page.getByTestId("backfill-runs").locator("tbody tr").count()).resolves.toBe(3);
    const backfillId = Number(new URL(page.url()).pathname.split("/").pop());
    const runs = await fx.store.listPipelineRuns({ backfillId });
    expect(runs.items.map((r) => new Date(r.executionDate).toISOString()).sort()).toEqual(["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]);
    await screenshot(page, "06-backfill-completed");
  });

  test("keyboard first: the skip link comes first and shows focus; a narrow window does not scroll sideways", async () => {
    const narrow = await context.newPage();
    try {
      await narrow.setViewportSize({ width: 360, height: 740 });
      await narrow.goto(`${fx.url}/ui/pipelines/etl`);
      await narrow.keyboard.press("Tab");
      // in the page, as a string: the test's TypeScript has no DOM types
      const focused = await narrow.evaluate<{ text: string; outline: string; width: string }>(
        "(() => { const el = document.activeElement; const style = getComputedStyle(el); return { text: el.textContent, outline: style.outlineStyle, width: style.outlineWidth }; })()",
      );
      expect(focused.text).toBe("Skip to content");
      expect(focused.outline).toBe("solid");
      expect(focused.width).not.toBe("0px");
      await narrow.keyboard.press("Enter");
      expect(await narrow.evaluate<string>("document.activeElement.id")).toBe("main");
      // the page fits: wide tables and drawings scroll inside their own regions
      const overflow = await narrow.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth");
      expect(overflow).toBeLessThanOrEqual(0);
      await expect(narrow.getByTestId("dag").locator("g.dag-node").count()).resolves.toBe(2);
      await screenshot(narrow, "07-narrow-pipeline");
    } finally {
      await narrow.close();
    }
  });

  test("the overview draws its chart, and no page logged a script error or a CSP refusal", async () => {
    await page.goto(`${fx.url}/ui`);
    await expect(page.getByTestId("runs-chart").locator("rect").count()).resolves.toBeGreaterThan(0);
    await expect(page.getByTestId("recent-failures").count()).resolves.toBe(0);
    await screenshot(page, "08-overview");
    // the first test's wrong password is answered 401 on purpose; nothing else may show
    expect(consoleErrors.filter((e) => !/\/ui\/login: .* 401 /.test(e))).toEqual([]);
  });
});
