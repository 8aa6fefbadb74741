/**
 * The web UI with 1,000,000 runs stored: how long the runs list (first page, and a deep page
 * through the keyset cursor), a run page (with its block runs) and the overview take to load.
 *
 * What it measures: the time from sending a GET over loopback HTTP, with the session cookie, to
 * the last byte of the server-rendered HTML, one request at a time (the server's query, render
 * and transfer; not the browser's layout, nor the live streams the page opens afterwards). Beside
 * each page: the JSON API's answer for the same data, measured in the same run, to show what the
 * HTML costs over the API.
 */
import { createUser } from "@kiln/core/auth";
import { createApp } from "@kiln/server";
import { openBenchProject, writeProject } from "./project.ts";
import { percentile } from "./scheduler.ts";

export interface UiPageTiming {
  label: string;
  path: string;
  samples: number;
  p50: number;
  p99: number;
  /** Bytes of HTML. */
  bytes: number;
  /** The JSON API's answer for the same data (null where there is no one-to-one route). */
  api: { path: string; p50: number; p99: number } | null;
}

export interface UiBenchResult {
  runs: number;
  pages: UiPageTiming[];
}

const PASSWORD = "bench-password-123";

/**
 * Inserts `count` completed runs in one statement per 100,000 (the rows alone, no engine), one a
 * minute up to now, so the overview's last 24 hours hold 1,440 of them as a live system's would.
 */
async function insertRuns(execute: (stmt: { sql: string; args: Array<number | string> }) => Promise<unknown>, count: number): Promise<void> {
  const chunk = 100_000;
  const base = Math.floor(Date.now() / 60_000) * 60_000 - (count + 1) * 60_000;
  for (let done = 0; done < count; done += chunk) {
    const n = Math.min(chunk, count - done);
    await execute({
      sql: `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
            INSERT INTO pipeline_runs (pipeline_uuid, execution_date, execution_partition, status, variables, metrics, created_at, updated_at, started_at, completed_at)
            SELECT 'p', ? + (? + i) * 60000, 'manual/' || (? + i), 'completed', '{}', '{}', ?, ?, ? + (? + i) * 60000, ? + (? + i) * 60000 + 4000 FROM seq`,
      args: [n, base, done, done, base, base, base, done, base, done],
    });
  }
}

/** Sequential GETs of `path`: sorted latencies (ms) and the last body's size. */
async function time(url: string, cookie: string, samples: number, warmup: number, check: (status: number, body: string) => void): Promise<{ times: number[]; bytes: number }> {
  let bytes = 0;
  const times: number[] = [];
  for (let i = 0; i < warmup + samples; i++) {
    const t0 = performance.now();
    const response = await fetch(url, { headers: { cookie } });
    const body = await response.text();
    const elapsed = performance.now() - t0;
    if (i === 0) check(response.status, body);
    if (i >= warmup) times.push(elapsed);
    bytes = body.length;
  }
  times.sort((a, b) => a - b);
  return { times, bytes };
}

/** Loads each page `samples` times (after `warmup`) with `runs` runs stored. */
export async function uiPageTimes(runs = 1_000_000, samples = 500, warmup = 50): Promise<UiBenchResult> {
  const root = writeProject("ui", { inProcess: true, pipelines: [{ uuid: "p", blocks: 3 }] });
  const p = await openBenchProject(root);
  const app = createApp(
    { store: p.store, project: () => p.project, clock: p.store.clock, version: "bench", authEnabled: true, secretKey: null, bodyLimitBytes: 1024 * 1024 },
    { log: () => {} },
  );
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
  try {
    const client = p.store.client;
    await insertRuns((stmt) => client.execute(stmt), runs);
    // the run page's run, in the middle of the history, with its three block runs
    const runId = Math.floor(runs / 2);
    const runRow = (await client.execute({ sql: "SELECT started_at FROM pipeline_runs WHERE id = ?", args: [runId] })).rows[0];
    const started = Number(runRow?.started_at ?? Date.now());
    for (let i = 0; i < 3; i++) {
      await client.execute({
        sql: `INSERT INTO block_runs (pipeline_run_id, block_uuid, status, attempt, metrics, started_at, completed_at, created_at, updated_at)
              VALUES (?, ?, 'completed', 1, '{}', ?, ?, ?, ?)`,
        args: [runId, `b00${i}`, started + i * 1000, started + (i + 1) * 1000, started, started],
      });
    }
    await createUser(client, { username: "bench", password: PASSWORD, role: "admin" }, Date.now(), { iterations: 1000 });
    const url = `http://127.0.0.1:${server.port}`;
    const login = await fetch(`${url}/ui/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: url },
      body: new URLSearchParams({ username: "bench", password: PASSWORD, next: "/ui" }).toString(),
    });
    const cookie = /kiln_session=[^;]+/.exec(login.headers.get("set-cookie") ?? "")?.[0];
    if (login.status !== 303 || !cookie) throw new Error(`sign-in answered ${login.status}`);

    const rowsOf = (body: string) => body.match(/<tr data-run-id=/g)?.length ?? 0;
    const expectRows = (n: number) => (status: number, body: string) => {
      if (status !== 200 || rowsOf(body) !== n) throw new Error(`answered ${status} with ${rowsOf(body)} runs, expected ${n}`);
    };
    const ok = (status: number, body: string) => {
      if (status !== 200) throw new Error(`answered ${status}: ${body.slice(0, 200)}`);
    };
    const cases: Array<{ label: string; path: string; check: (status: number, body: string) => void; api: string | null }> = [
      { label: "runs list, first page", path: "/ui/runs", check: expectRows(40), api: "/api/pipeline_runs?_limit=40" },
      {
        label: `runs list, deep page (after=${runId.toLocaleString("en-US")}, page ${Math.floor((runs - runId) / 40 + 1).toLocaleString("en-US")})`,
        path: `/ui/runs?after=${runId}`,
        check: expectRows(40),
        api: `/api/pipeline_runs?_limit=40&_after=${runId}`,
      },
      {
        label: `run page (run ${runId.toLocaleString("en-US")}, 3 block runs)`,
        path: `/ui/runs/${runId}`,
        check: (status, body) => {
          ok(status, body);
          if (!body.includes('data-testid="gantt"')) throw new Error("the run page has no timeline");
        },
        api: `/api/pipeline_runs/${runId}`,
      },
      { label: "overview (1,440 runs in its 24 h chart)", path: "/ui", check: ok, api: null },
    ];
    const pages: UiPageTiming[] = [];
    for (const c of cases) {
      const html = await time(`${url}${c.path}`, cookie, samples, warmup, c.check);
      let api: UiPageTiming["api"] = null;
      if (c.api) {
        const json = await time(`${url}${c.api}`, cookie, samples, warmup, ok);
        api = { path: c.api, p50: percentile(json.times, 50), p99: percentile(json.times, 99) };
      }
      pages.push({ label: c.label, path: c.path, samples, p50: percentile(html.times, 50), p99: percentile(html.times, 99), bytes: html.bytes, api });
    }
    return { runs, pages };
  } finally {
    server.stop(true);
    p.close();
  }
}

const ms = (n: number) => `${n.toFixed(2)} ms`;

/** The UI figures as markdown. */
export function uiTable(result: UiBenchResult): string {
  const first = result.pages[0];
  return [
    `(h): ${result.runs.toLocaleString("en-US")} runs stored; each page requested ${first?.samples ?? 0} times one after another (after 50 warm-ups) with a session cookie; time from sending the GET over loopback HTTP to the last byte of the server-rendered HTML. JSON API: the API's answer for the same data, same run.`,
    "",
    "| Page | p50 | p99 | HTML | JSON API p50 / p99 |",
    "| --- | --- | --- | --- | --- |",
    ...result.pages.map((pg) => `| (h) ${pg.label} | ${ms(pg.p50)} | ${ms(pg.p99)} | ${(pg.bytes / 1024).toFixed(1)} KiB | ${pg.api ? `${ms(pg.api.p50)} / ${ms(pg.api.p99)}` : "—"} |`),
    "",
  ].join("\n");
}
