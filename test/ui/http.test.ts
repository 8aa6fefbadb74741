/**
 * The web UI over plain HTTP against the real server: sign-in and its cookie, CSRF and origin
 * checks, roles, names-only secrets, keyset pages, bad input answered with a 4xx page, the
 * overview's panels, the live streams' framing, retries from the run page.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { PipelineRunStatus } from "@kiln/core";
import { SIGN_IN_POLICY } from "../../server/src/sign-in-throttle.ts";
import { PASSWORD, postForm, setFlaky, signInOverHttp, uiFixture, type UiFixture } from "./helpers.ts";

let fx: UiFixture;
let editor: { cookie: string; csrf: string };
let viewer: { cookie: string; csrf: string };

beforeAll(async () => {
  // a first sign-in delay of a minute, so a loaded machine's slow requests never outlast it (the default is 1 s)
  fx = await uiFixture({ signInPolicy: { ...SIGN_IN_POLICY, baseDelayMs: 60_000 } });
  editor = await signInOverHttp(fx.url, fx.users.editor);
  viewer = await signInOverHttp(fx.url, fx.users.viewer);
});

afterAll(async () => {
  setFlaky(false);
  await fx?.close();
});

/** A GET with a session cookie (or none); redirects are not followed. */
async function get(path: string, session: { cookie: string } | null = editor): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`${fx.url}${path}`, { redirect: "manual", headers: session ? { cookie: session.cookie } : {} });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

/** A same-origin form POST with the session's cookie and CSRF token (unless overridden). */
function post(path: string, fields: Record<string, string> = {}, session = editor, headers: Record<string, string> = {}): Promise<Response> {
  return postForm(fx.url, path, { _csrf: session.csrf, ...fields }, { cookie: session.cookie, origin: fx.url, ...headers });
}

async function waitForRun(id: number, statuses: PipelineRunStatus[]): Promise<PipelineRunStatus> {
  for (let i = 0; i < 400; i++) {
    const run = await fx.store.getPipelineRun(id);
    if (run && statuses.includes(run.status)) return run.status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`run ${id} never reached ${statuses.join(" or ")}: ${(await fx.store.getPipelineRun(id))?.status}`);
}

describe("signing in", () => {
  test("pages redirect to the login page, which returns to the page asked for; assets are public", async () => {
    const page = await get("/ui/runs?status=failed", null);
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe(`/ui/login?next=${encodeURIComponent("/ui/runs?status=failed")}`);
    expect((await get("/", null)).headers.get("location")).toBe("/ui");
    expect((await get("/ui/")).headers.get("location")).toBe("/ui");
    expect((await get("/ui/runs/")).headers.get("location")).toBe("/ui/runs");
    const css = await get("/ui/static/app.css", null);
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toContain("text/css");
    const js = await get("/ui/static/app.js", null);
    expect(js.headers.get("content-type")).toContain("javascript");
  });

  test("a good password sets an HttpOnly, SameSite=Strict session cookie; a bad one a 401 page and no cookie", async () => {
    const bad = await postForm(fx.url, "/ui/login", { username: fx.users.editor, password: "wrong password", next: "/ui" }, { origin: fx.url });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("set-cookie")).toBeNull();
    expect(await bad.text()).toContain("Invalid username or password");
    const unknown = await postForm(fx.url, "/ui/login", { username: "nobody", password: PASSWORD }, { origin: fx.url });
    expect(unknown.status).toBe(401);
    const empty = await postForm(fx.url, "/ui/login", { username: "", password: "" }, { origin: fx.url });
    expect(empty.status).toBe(400);

    const good = await postForm(fx.url, "/ui/login", { username: fx.users.editor, password: PASSWORD, next: "/ui/runs" }, { origin: fx.url });
    expect(good.status).toBe(303);
    expect(good.headers.get("location")).toBe("/ui/runs");
    const cookie = good.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^kiln_session=[A-Za-z0-9_.-]+;/);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/");
    expect(cookie).toMatch(/Max-Age=\d+/);
  });

  test("repeated failed sign-ins are throttled with a page that says when to try again", async () => {
    let last: Response | null = null;
    for (let i = 0; i < 6; i++) last = await postForm(fx.url, "/ui/login", { username: "throttled-user", password: "wrong password" }, { origin: fx.url });
    expect(last?.status).toBe(429);
    expect(Number(last?.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await last?.text()).toContain("Too many sign-in attempts");
  });

  test("next= cannot send the user to another site", async () => {
    for (const next of ["https://evil.example/ui", "//evil.example/ui", "/api/secrets", "/ui\\@evil"]) {
      const response = await postForm(fx.url, "/ui/login", { username: fx.users.viewer, password: PASSWORD, next }, { origin: fx.url });
      expect(response.headers.get("location")).toBe("/ui");
    }
  });

  test("a sign-in form posted from another site is refused", async () => {
    const response = await postForm(fx.url, "/ui/login", { username: fx.users.editor, password: PASSWORD }, { origin: "https://evil.example" });
    expect(response.status).toBe(403);
    expect(response.headers.get("set-cookie")).toBeNull();
  });

  test("signing out ends the session: the old cookie no longer opens a page", async () => {
    const session = await signInOverHttp(fx.url, fx.users.viewer);
    expect((await get("/ui/pipelines", session)).status).toBe(200);
    const out = await post("/ui/logout", {}, session);
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/kiln_session=;.*Max-Age=0/);
    const after = await get("/ui/pipelines", session);
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toStartWith("/ui/login");
  });

  test("pages carry a strict CSP, no framing, and are not cached", async () => {
    const page = await get("/ui/pipelines");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(page.headers.get("content-security-policy")).not.toContain("unsafe-inline");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("cache-control")).toBe("no-store");
    // and nothing inline for the CSP to refuse
    expect(page.text).not.toMatch(/<script>|style="/);
  });
});

describe("writes", () => {
  test("a POST without the CSRF token, or from another site, changes nothing", async () => {
    const path = `/ui/triggers/${fx.apiTrigger.id}/run`;
    const before = (await fx.store.listPipelineRuns({ pipelineScheduleId: fx.apiTrigger.id })).items.length;
    const noToken = await postForm(fx.url, path, {}, { cookie: editor.cookie, origin: fx.url });
    expect(noToken.status).toBe(403);
    expect(await noToken.text()).toContain("security token");
    const wrongToken = await post(path, { _csrf: viewer.csrf });
    expect(wrongToken.status).toBe(403);
    const crossOrigin = await post(path, {}, editor, { origin: "https://evil.example" });
    expect(crossOrigin.status).toBe(403);
    const crossSite = await post(path, {}, editor, { "sec-fetch-site": "cross-site" });
    expect(crossSite.status).toBe(403);
    const noCookie = await postForm(fx.url, path, { _csrf: editor.csrf }, { origin: fx.url });
    expect(noCookie.status).toBe(401);
    expect((await fx.store.listPipelineRuns({ pipelineScheduleId: fx.apiTrigger.id })).items.length).toBe(before);

    const ok = await post(path);
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toMatch(/^\/ui\/runs\/\d+$/);
    expect((await fx.store.listPipelineRuns({ pipelineScheduleId: fx.apiTrigger.id })).items.length).toBe(before + 1);
  });

  test("a viewer sees no token and no actions, and cannot act", async () => {
    const page = await get(`/ui/triggers/${fx.apiTrigger.id}`, viewer);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain(fx.apiToken);
    expect(page.text).not.toContain("Run now");
    const editorPage = await get(`/ui/triggers/${fx.apiTrigger.id}`);
    expect(editorPage.text).toContain(`/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs/${fx.apiToken}`);
    expect((await post(`/ui/triggers/${fx.apiTrigger.id}/run`, {}, viewer)).status).toBe(403);
    expect((await post(`/ui/triggers/${fx.timeTrigger.id}/status`, { status: "active" }, viewer)).status).toBe(403);
    expect((await fx.store.getPipelineSchedule(fx.timeTrigger.id))?.status).toBe("inactive");
    expect((await get("/ui/secrets", viewer)).status).toBe(403);
  });

  test("activate, deactivate and rotate a token from the trigger page", async () => {
    const on = await post(`/ui/triggers/${fx.timeTrigger.id}/status`, { status: "active" });
    expect(on.headers.get("location")).toBe(`/ui/triggers/${fx.timeTrigger.id}?done=activated`);
    expect((await fx.store.getPipelineSchedule(fx.timeTrigger.id))?.status).toBe("active");
    const page = await get(`/ui/triggers/${fx.timeTrigger.id}?done=activated`);
    expect(page.text).toContain("The trigger is active.");
    // ten upcoming dates, each 02:30 in New York, in UTC in the markup
    const dates = [...page.text.matchAll(/<tr><td><time datetime="([^"]+)"/g)].map((m) => m[1] as string);
    expect(dates.length).toBe(10);
    for (const d of dates) {
      const wall = new Intl.DateTimeFormat("en-GB", { timeZone: "America/New_York", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(d));
      expect(wall).toBe("02:30");
    }
    expect((await post(`/ui/triggers/${fx.timeTrigger.id}/status`, { status: "inactive" })).status).toBe(303);
    expect((await fx.store.getPipelineSchedule(fx.timeTrigger.id))?.status).toBe("inactive");
    expect((await post(`/ui/triggers/${fx.timeTrigger.id}/status`, { status: "paused" })).status).toBe(400);
    expect((await post(`/ui/triggers/${fx.timeTrigger.id}/rotate_token`)).status).toBe(409);

    const slow = await fx.store.revealTriggerToken(fx.slowTrigger.id);
    expect((await post(`/ui/triggers/${fx.slowTrigger.id}/rotate_token`)).status).toBe(303);
    const rotated = await fx.store.revealTriggerToken(fx.slowTrigger.id);
    expect(rotated).toMatch(/^[0-9a-f]{32}$/);
    expect(rotated).not.toBe(slow);
  });

  test("retry failed blocks, and retry from a block, from the run page", async () => {
    setFlaky(true);
    const run = await fx.store.createPipelineRun({ pipelineUuid: "flaky", executionDate: Date.now() });
    if (!run) throw new Error("no run");
    fx.scheduler.wake();
    expect(await waitForRun(run.id, ["failed", "completed"])).toBe("failed");
    const failedPage = await get(`/ui/runs/${run.id}`);
    expect(failedPage.text).toContain("check failed on purpose");
    expect(failedPage.text).toContain("Retry failed blocks");
    expect(failedPage.text).toContain('name="from_block_uuid" value="check"');
    expect((await post(`/ui/runs/${run.id}/retry`, { from_block_uuid: "../etc" })).status).toBe(400);
    expect((await post(`/ui/runs/${run.id}/retry`, { from_block_uuid: "nope" })).status).toBe(422);

    // still failing: the whole retry fails again
    expect((await post(`/ui/runs/${run.id}/retry`)).status).toBe(303);
    expect(await waitForRun(run.id, ["failed", "completed"])).toBe("failed");
    setFlaky(false);
    expect((await post(`/ui/runs/${run.id}/retry`, { from_block_uuid: "check" })).status).toBe(303);
    expect(await waitForRun(run.id, ["failed", "completed"])).toBe("completed");
    const blocks = await fx.store.getBlockRuns(run.id);
    expect(blocks.map((b) => `${b.blockUuid}:${b.status}`).sort()).toEqual(["check:completed", "report:completed"]);
    // a completed run cannot be retried or cancelled: a 409 page, not a 500
    expect((await post(`/ui/runs/${run.id}/retry`)).status).toBe(409);
    expect((await post(`/ui/runs/${run.id}/cancel`)).status).toBe(409);
  });
});

describe("pages", () => {
  test("the runs list pages by keyset: 40 a page, Older carries the cursor, the last page has no Older link", async () => {
    const ids: number[] = [];
    for (let i = 0; i < 45; i++) {
      const run = await fx.store.createPipelineRun({ pipelineUuid: "etl", executionDate: Date.UTC(2025, 0, 1) + i * 60_000 });
      if (run) ids.push(run.id);
    }
    await fx.client.execute({ sql: `UPDATE pipeline_runs SET status = 'completed' WHERE id >= ?`, args: [ids[0] as number] });
    const first = await get("/ui/runs?pipeline_uuid=etl&status=completed");
    const rows = (text: string) => [...text.matchAll(/<tr data-run-id="(\d+)"/g)].map((m) => Number(m[1]));
    const firstRows = rows(first.text);
    expect(firstRows.length).toBe(40);
    expect(firstRows).toEqual([...firstRows].sort((a, b) => b - a));
    const older = /href="(\/ui\/runs\?[^"]+)" rel="next"/.exec(first.text)?.[1]?.replace(/&amp;/g, "&");
    expect(older).toBe(`/ui/runs?pipeline_uuid=etl&status=completed&after=${firstRows.at(-1)}`);
    const second = await get(older as string);
    const secondRows = rows(second.text);
    expect(secondRows.every((id) => id < (firstRows.at(-1) as number))).toBe(true);
    expect(second.text).not.toContain('rel="next"');
    expect(second.text).toContain("Newest");
  });

  test("bad input is a 4xx page with a message, never a 500", async () => {
    const cases: Array<[string, number, string]> = [
      ["/ui/runs?status=bogus", 400, "status: expected one of"],
      ["/ui/runs?after=abc", 400, "after:"],
      ["/ui/runs?pipeline_uuid=%3Cscript%3E", 400, "pipeline_uuid"],
      ["/ui/runs/999999", 404, "no pipeline run 999999"],
      ["/ui/runs/0", 404, "no run"],
      ["/ui/runs/12abc", 404, "no run"],
      ["/ui/pipelines/nope", 404, "no pipeline"],
      ["/ui/triggers/424242", 404, "no trigger"],
      ["/ui/backfills/424242", 404, "backfill 424242 does not exist"],
      ["/ui/runs/live?ids=1,x", 400, "ids:"],
      ["/ui/no/such/page", 404, "no such page"],
    ];
    for (const [path, status, text] of cases) {
      const page = await get(path);
      expect({ path, status: page.status }).toEqual({ path, status });
      expect(page.text).toContain(text);
      expect(page.text).not.toContain("    at ");
    }
  });

  test("a backfill preview checks its input; creating one from a bad form writes nothing", async () => {
    const base = { pipeline_uuid: "etl", name: "b", start_datetime: "2026-01-01", end_datetime: "2026-01-02", interval_type: "day", interval_units: "1" };
    const preview = (fields: Record<string, string>) => get(`/ui/backfills/preview?${new URLSearchParams({ ...base, ...fields })}`);
    const cases: Array<[Record<string, string>, string]> = [
      [{ end_datetime: "2025-12-01" }, "end_datetime: is before start_datetime"],
      [{ start_datetime: "2026-02-30" }, "start_datetime: expected a date"],
      [{ start_datetime: "yesterday" }, "start_datetime: expected a date"],
      [{ interval_type: "fortnight" }, "interval_type: expected one of"],
      [{ interval_units: "0" }, "interval_units: expected a positive whole number"],
      [{ interval_type: "minute", end_datetime: "2027-01-01" }, "more than the limit"],
      [{ block_uuid: "nope" }, "has no block"],
      [{ pipeline_uuid: "nope" }, "has no pipeline"],
    ];
    for (const [fields, message] of cases) {
      const page = await preview(fields);
      expect({ fields, status: page.status }).toEqual({ fields, status: 422 });
      expect(page.text).toContain(message);
      expect(page.text).not.toContain("create-backfill");
    }
    // a date-time in UTC, hourly: 2026-01-01 22:00 to 2026-01-02 01:00 is four runs
    const hourly = await preview({ start_datetime: "2026-01-01T22:00", end_datetime: "2026-01-02 01:00", interval_type: "hour" });
    expect(hourly.status).toBe(200);
    expect(hourly.text).toContain("<strong>4</strong> pipeline runs");
    expect(hourly.text).toContain('datetime="2026-01-02T01:00:00.000Z"');

    const before = (await fx.client.execute("SELECT count(*) AS n FROM backfills")).rows[0]?.n;
    const bad = await post("/ui/backfills", { ...base, end_datetime: "2025-01-01" });
    expect(bad.status).toBe(422);
    expect((await fx.client.execute("SELECT count(*) AS n FROM backfills")).rows[0]?.n).toBe(before as number);
  });

  test("secrets show names only", async () => {
    await fx.store.putSecret(fx.secretKey, "WAREHOUSE_PASSWORD", "hunter2-do-not-show");
    const page = await get("/ui/secrets");
    expect(page.status).toBe(200);
    expect(page.text).toContain("WAREHOUSE_PASSWORD");
    expect(page.text).not.toContain("hunter2-do-not-show");
  });

  test("the overview shows failures, SLA breaches, drift and the scheduler", async () => {
    const now = Date.now();
    const failed = await fx.store.createPipelineRun({ pipelineUuid: "etl", executionDate: now - 60_000 });
    const late = await fx.store.createPipelineRun({ pipelineUuid: "etl", pipelineScheduleId: fx.timeTrigger.id, executionDate: now - 3_600_000 });
    if (!failed || !late) throw new Error("no run");
    await fx.client.execute({ sql: "UPDATE pipeline_runs SET status = 'failed', passed_sla = 1 WHERE id = ?", args: [failed.id] });
    await fx.client.execute({ sql: "UPDATE pipeline_runs SET status = 'completed' WHERE id = ?", args: [late.id] });
    const page = await get("/ui");
    expect(page.status).toBe(200);
    const section = (title: string) => page.text.slice(page.text.indexOf(`>${title}</h2>`), page.text.indexOf("</section>", page.text.indexOf(`>${title}</h2>`)));
    expect(section("Recent failures")).toContain(`href="/ui/runs/${failed.id}"`);
    expect(section("SLA breaches")).toContain(`href="/ui/runs/${failed.id}"`);
    expect(section("Drift warnings")).toContain(`href="/ui/runs/${late.id}"`);
    expect(section("Drift warnings")).not.toContain(`href="/ui/runs/${failed.id}"`);
    expect(section("Scheduler health")).toContain("active");
    // the chart draws the failed run (hatched) in its hour
    const chart = page.text.slice(page.text.indexOf('data-testid="runs-chart"'), page.text.indexOf("</svg>", page.text.indexOf('data-testid="runs-chart"')));
    expect(chart).toContain('class="seg-failed"');
  });

  test("a run's stream sends its region and ends once the run has ended; the API accepts the cookie for reads only", async () => {
    const run = (await fx.store.listPipelineRuns({ pipelineUuid: "etl", status: "completed" }, { limit: 1 })).items[0];
    if (!run) throw new Error("no completed run");
    const stream = await get(`/ui/runs/${run.id}/events`);
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    const events = stream.text.split("\n\n").filter((e) => e.startsWith("event:"));
    expect(events.length).toBe(1);
    const data = JSON.parse(/data: (.*)/.exec(events[0] as string)?.[1] ?? "{}") as { html: string; status: string; done: boolean };
    expect(data).toMatchObject({ status: "completed", done: true });
    expect(data.html).toContain('data-status="completed"');

    const api = await fetch(`${fx.url}/api/pipelines`, { headers: { cookie: editor.cookie } });
    expect(api.status).toBe(200);
    const write = await fetch(`${fx.url}/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs`, {
      method: "POST",
      headers: { cookie: editor.cookie, "content-type": "application/json", origin: fx.url },
      body: JSON.stringify({ pipeline_run: {} }),
    });
    expect(write.status).toBe(401);
  });
});

