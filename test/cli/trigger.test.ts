/**
 * `kiln trigger add|update|remove|preview`, run as a real child process: edits that keep the
 * file's comments and load again, usage errors (exit 2, one line, file unchanged), no database
 * touched, and the execution dates preview prints across DST changes.
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProject, type TriggerConfig } from "@kiln/core/project";
import { folderSource } from "@kiln/node";
import { runKiln, TempDirs, withoutUsage, type KilnResult } from "../helpers/cli.ts";

const temp = new TempDirs();
afterAll(() => temp.removeAll());

const TRIGGERS = `# triggers of p, kept in git
triggers:
  - name: nightly # the dashboards link to this name
    schedule_type: time
    schedule_interval: '0 2 * * *'
    timezone: Europe/Paris
    status: active
    settings:
      # finance needs every day
      catch_up: all

  - name: webhook
    schedule_type: api
`;

let project: string;
let db: string;

beforeEach(() => {
  project = temp.project({
    "kiln.yaml": "",
    "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n",
    "pipelines/p/triggers.yaml": TRIGGERS,
    "pipelines/q/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n",
    "data_loaders/load.js": "export default function load(ctx) { return 1; }\n",
  });
  db = join(temp.make("kiln-db-"), "kiln.db");
});

/** Runs kiln with a database path of its own, which no trigger command may create. */
function kiln(args: string[]): Promise<KilnResult> {
  return runKiln(args, { KILN_DATABASE_URL: `file:${db}` });
}

function triggersFile(pipeline = "p"): string {
  return join(project, "pipelines", pipeline, "triggers.yaml");
}

async function loadedTriggers(pipeline = "p"): Promise<TriggerConfig[]> {
  const loaded = await loadProject(folderSource(project), { executorTypes: ["local"] });
  return loaded.pipelines.get(pipeline)!.triggers;
}

function expectNoDatabase(): void {
  expect(existsSync(db)).toBe(false);
  expect(existsSync(join(project, ".kiln"))).toBe(false);
}

/** Exit 2 with exactly one `kiln: ...` line on stderr matching `message`, nothing on stdout. */
function expectUsageError(result: KilnResult, message: RegExp): void {
  expect(result.stdout).toBe("");
  // one line (a flag mistake adds the command's usage after it)
  expect(withoutUsage(result.stderr).split("\n")).toHaveLength(2);
  expect(result.stderr).toStartWith("kiln: ");
  expect(result.stderr).toMatch(message);
  expect(result.code).toBe(2);
}

describe("kiln trigger add", () => {
  test("appends the trigger to triggers.yaml, keeping the comments, and the project loads it", async () => {
    const result = await kiln([
      "trigger", "add", project, "p",
      "--name", "hourly",
      "--schedule-type", "time",
      "--schedule-interval", "@hourly",
      "--timezone", "America/New_York",
      "--start-time", "2026-01-01T00:00:00Z",
      "--status", "active",
      "--variables", '{"region": "us"}',
      "--settings", '{"dst_gap": "skip", "catch_up": "none"}',
      "--sla", "900",
      "--description", "every hour",
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("added trigger hourly to pipelines/p/triggers.yaml (status active)");
    expect(result.stdout).toContain(`a running scheduler (kiln start ${project}) picks the change up`);
    const text = readFileSync(triggersFile(), "utf8");
    expect(text.startsWith(TRIGGERS)).toBe(true);
    const hourly = (await loadedTriggers()).find((t) => t.name === "hourly");
    expect(hourly).toMatchObject({
      scheduleType: "time",
      scheduleInterval: "@hourly",
      timezone: "America/New_York",
      startTime: Date.UTC(2026, 0, 1),
      status: "active",
      variables: { region: "us" },
      settings: { dst_gap: "skip", catch_up: "none" },
      sla: 900,
      description: "every hour",
    });
    expectNoDatabase();
  });

  test("creates triggers.yaml for a pipeline that has none; a new trigger is inactive unless told", async () => {
    const result = await kiln(["trigger", "add", project, "q", "--name", "api", "--schedule-type", "api"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("(status inactive)");
    expect(result.stdout).toContain("until --status active");
    expect(readFileSync(triggersFile("q"), "utf8")).toBe("triggers:\n  - name: api\n    schedule_type: api\n    status: inactive\n");
    expect((await loadedTriggers("q")).map((t) => [t.name, t.status])).toEqual([["api", "inactive"]]);
  });
});

describe("kiln trigger add --event-pattern", () => {
  test("writes the pattern, which the project loads; a bad pattern is exit 2 naming the flag and its field, file unchanged", async () => {
    const pattern = { source: ["aws.s3"], detail: { object: { key: [{ prefix: "incoming/" }] } } };
    const added = await kiln(["trigger", "add", project, "q", "--name", "uploads", "--schedule-type", "event", "--event-pattern", JSON.stringify(pattern)]);
    expect(added.code).toBe(0);
    const [loaded] = await loadedTriggers("q");
    expect(loaded?.eventPattern).toEqual(pattern);

    const before = readFileSync(triggersFile("q"), "utf8");
    const bad = await kiln(["trigger", "add", project, "q", "--name", "other", "--schedule-type", "event", "--event-pattern", '{"detail": {"size": [{"numeric": "big"}]}}']);
    expectUsageError(bad, /^kiln: --event-pattern: detail\.size/);
    const notJson = await kiln(["trigger", "add", project, "q", "--name", "other", "--schedule-type", "event", "--event-pattern", "{"]);
    expectUsageError(notJson, /--event-pattern: expected a JSON object/);
    expect(readFileSync(triggersFile("q"), "utf8")).toBe(before);
    expectNoDatabase();
  });
});

describe("kiln trigger update", () => {
  test("changes only the given fields, in place", async () => {
    const result = await kiln(["trigger", "update", project, "p", "nightly", "--schedule-interval", "30 3 * * *", "--status", "inactive", "--sla", "60"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("updated trigger nightly in pipelines/p/triggers.yaml: --schedule-interval, --status, --sla");
    expect(readFileSync(triggersFile(), "utf8")).toBe(
      TRIGGERS.replace("'0 2 * * *'", "'30 3 * * *'").replace("status: active", "status: inactive").replace("      catch_up: all\n", "      catch_up: all\n    sla: 60\n"),
    );
    expect((await loadedTriggers())[0]).toMatchObject({ name: "nightly", scheduleInterval: "30 3 * * *", status: "inactive", sla: 60, timezone: "Europe/Paris" });
    expectNoDatabase();
  });

  test("--rename keeps the trigger's place and comment; an empty value removes a key", async () => {
    const result = await kiln(["trigger", "update", project, "p", "nightly", "--rename", "nightly_eu", "--timezone", ""]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("(renamed nightly to nightly_eu)");
    expect(readFileSync(triggersFile(), "utf8")).toBe(TRIGGERS.replace("- name: nightly #", "- name: nightly_eu #").replace("    timezone: Europe/Paris\n", ""));
    expect((await loadedTriggers()).map((t) => [t.name, t.timezone])).toEqual([
      ["nightly_eu", "UTC"],
      ["webhook", "UTC"],
    ]);
  });
});

describe("kiln trigger remove", () => {
  test("removes the trigger and leaves the rest as written", async () => {
    const result = await kiln(["trigger", "remove", project, "p", "webhook"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("removed trigger webhook from pipelines/p/triggers.yaml");
    expect(result.stdout).toContain("makes it inactive");
    expect(readFileSync(triggersFile(), "utf8")).toBe(TRIGGERS.slice(0, TRIGGERS.indexOf("\n\n  - name: webhook")) + "\n");
    expect((await loadedTriggers()).map((t) => t.name)).toEqual(["nightly"]);
    expectNoDatabase();
  });
});

describe("usage errors: exit 2, one line, triggers.yaml unchanged, no database", () => {
  const cases: Array<{ name: string; args: () => string[]; message: RegExp }> = [
    { name: "add: a name that exists", args: () => ["trigger", "add", project, "p", "--name", "nightly", "--schedule-type", "api"], message: /a trigger named "nightly" already exists/ },
    { name: "add: without --name", args: () => ["trigger", "add", project, "p", "--schedule-type", "api"], message: /--name: required/ },
    { name: "add: without --schedule-type", args: () => ["trigger", "add", project, "p", "--name", "x"], message: /--schedule-type: required/ },
    { name: "add: an unknown --schedule-type", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "cron"], message: /--schedule-type: expected one of time, event, api, got "cron"/ },
    { name: "add: a time trigger without an interval", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "time"], message: /--schedule-interval: required for a time trigger/ },
    { name: "add: a bad --schedule-interval", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "time", "--schedule-interval", "0 0 * *"], message: /--schedule-interval: invalid schedule interval "0 0 \* \*": a cron expression has 5 fields/ },
    { name: "add: bad JSON in --variables", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "api", "--variables", "{a: 1"], message: /--variables: expected a JSON object, got invalid JSON/ },
    { name: "add: --settings that is a list", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "api", "--settings", "[1]"], message: /--settings: expected a JSON object, got an array/ },
    { name: "add: a bad setting", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "api", "--settings", '{"dst_gap": "jump"}'], message: /--settings: dst_gap: expected one of skip, shift, got "jump"/ },
    { name: "add: an unknown --timezone", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "api", "--timezone", "Mars/Base"], message: /--timezone: expected an IANA time zone/ },
    { name: "add: a bad --start-time", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "api", "--start-time", "soon"], message: /--start-time: expected epoch milliseconds or a date-time/ },
    { name: "add: a bad --sla", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "api", "--sla", "abc"], message: /--sla: expected a positive number of seconds, got "abc"/ },
    { name: "add: an unknown --status", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "api", "--status", "on"], message: /--status: expected one of active, inactive/ },
    { name: "add: an unknown project", args: () => ["trigger", "add", join(project, "nope"), "p", "--name", "x", "--schedule-type", "api"], message: /no project at .*nope/ },
    { name: "add: an unknown pipeline", args: () => ["trigger", "add", project, "zz", "--name", "x", "--schedule-type", "api"], message: /no pipeline zz in .* \(pipelines: p, q\)/ },
    { name: "add: an unknown flag", args: () => ["trigger", "add", project, "p", "--name", "x", "--schedule-type", "api", "--colour", "red"], message: /--colour/ },
    { name: "update: an unknown trigger", args: () => ["trigger", "update", project, "p", "nope", "--status", "active"], message: /no trigger named "nope" \(triggers: nightly, webhook\)/ },
    { name: "update: nothing to change", args: () => ["trigger", "update", project, "p", "nightly"], message: /nothing to change/ },
    { name: "update: a rename onto another trigger", args: () => ["trigger", "update", project, "p", "nightly", "--rename", "webhook"], message: /cannot rename "nightly" to "webhook"/ },
    { name: "update: bad JSON in --settings", args: () => ["trigger", "update", project, "p", "nightly", "--settings", "nope"], message: /--settings: expected a JSON object, got invalid JSON/ },
    { name: "update: a bad --schedule-interval", args: () => ["trigger", "update", project, "p", "nightly", "--schedule-interval", "@weekdays"], message: /--schedule-interval: .*unknown preset/ },
    { name: "update: removing the interval of a time trigger", args: () => ["trigger", "update", project, "p", "nightly", "--schedule-interval", ""], message: /--schedule-interval: required for a time trigger/ },
    { name: "update: an unknown pipeline", args: () => ["trigger", "update", project, "zz", "nightly", "--status", "active"], message: /no pipeline zz/ },
    { name: "remove: an unknown trigger", args: () => ["trigger", "remove", project, "p", "nope"], message: /no trigger named "nope"/ },
    { name: "remove: from a pipeline without triggers.yaml", args: () => ["trigger", "remove", project, "q", "nope"], message: /no trigger named "nope": the pipeline has no triggers.yaml/ },
    { name: "an unknown subcommand", args: () => ["trigger", "delete", project, "p", "nightly"], message: /expected add, update, remove or preview, got delete/ },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const result = await kiln(c.args());
      expectUsageError(result, c.message);
      expect(readFileSync(triggersFile(), "utf8")).toBe(TRIGGERS);
      expect(existsSync(triggersFile("q"))).toBe(false);
      expectNoDatabase();
    });
  }

  test("a project that does not load is refused before triggers.yaml is touched", async () => {
    writeFileSync(join(project, "pipelines/q/metadata.yaml"), "blocks:\n  - uuid: missing\n    type: data_loader\n");
    const result = await kiln(["trigger", "add", project, "p", "--name", "x", "--schedule-type", "api"]);
    expectUsageError(result, /pipelines\/q\/metadata.yaml: blocks\[0\]: expected a module for block "missing"/);
    expect(readFileSync(triggersFile(), "utf8")).toBe(TRIGGERS);
  });
});

describe("kiln trigger preview", () => {
  const NEW_YORK_FLAGS = ["--schedule-interval", "30 2 * * *", "--timezone", "America/New_York", "--from", "2026-03-07T00:00:00Z", "--to", "2026-03-10T00:00:00Z"];

  test("spring forward with the default dst_gap (shift): the skipped 02:30 runs at 03:00 EDT", async () => {
    const result = await kiln(["trigger", "preview", ...NEW_YORK_FLAGS, "--json"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(["2026-03-07T07:30:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"]);
  });

  test("spring forward with --dst-gap skip: no run that day", async () => {
    const result = await kiln(["trigger", "preview", ...NEW_YORK_FLAGS, "--dst-gap", "skip", "--json"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(["2026-03-07T07:30:00.000Z", "2026-03-09T06:30:00.000Z"]);
  });

  test("plain output: the UTC instant and the wall time with its offset", async () => {
    const result = await kiln(["trigger", "preview", ...NEW_YORK_FLAGS]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        "2026-03-07T07:30:00.000Z  2026-03-07 02:30 -05:00 (EST)",
        "2026-03-08T07:00:00.000Z  2026-03-08 03:00 -04:00 (EDT)",
        "2026-03-09T06:30:00.000Z  2026-03-09 02:30 -04:00 (EDT)",
        "",
      ].join("\n"),
    );
  });

  test("fall back with --dst-overlap both: 01:30 runs twice", async () => {
    const args = ["--schedule-interval", "30 1 * * *", "--timezone", "America/New_York", "--from", "2026-11-01T00:00:00Z", "--to", "2026-11-02T00:00:00Z", "--json"];
    expect(JSON.parse((await kiln(["trigger", "preview", ...args])).stdout)).toEqual(["2026-11-01T05:30:00.000Z"]);
    const both = await kiln(["trigger", "preview", ...args, "--dst-overlap", "both"]);
    expect(JSON.parse(both.stdout)).toEqual(["2026-11-01T05:30:00.000Z", "2026-11-01T06:30:00.000Z"]);
  });

  test("the window is [from, to): a date at --from is in, a date at --to is out; --start-time bounds it", async () => {
    const args = ["trigger", "preview", "--schedule-interval", "@daily", "--from", "2026-01-01", "--to", "2026-01-03", "--json"];
    expect(JSON.parse((await kiln(args)).stdout)).toEqual(["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"]);
    const started = await kiln([...args, "--start-time", "2026-01-01 12:00:00"]);
    expect(JSON.parse(started.stdout)).toEqual(["2026-01-02T00:00:00.000Z"]);
  });

  test("a project's trigger is previewed with its own timezone and dst policies", async () => {
    writeFileSync(
      triggersFile("q"),
      "triggers:\n  - name: ny\n    schedule_type: time\n    schedule_interval: '30 2 * * *'\n    timezone: America/New_York\n    status: active\n    settings:\n      dst_gap: skip\n",
    );
    const result = await kiln(["trigger", "preview", project, "q", "ny", "--from", "2026-03-07T00:00:00Z", "--to", "2026-03-10T00:00:00Z", "--json"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(["2026-03-07T07:30:00.000Z", "2026-03-09T06:30:00.000Z"]);
    expectNoDatabase();
  });

  test("an inactive trigger is previewed, with a note that it creates no runs yet", async () => {
    await kiln(["trigger", "update", project, "p", "nightly", "--status", "inactive"]);
    const result = await kiln(["trigger", "preview", project, "p", "nightly", "--from", "2026-07-01T00:00:00Z", "--to", "2026-07-02T00:00:00Z"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("2026-07-01T00:00:00.000Z  2026-07-01 02:00 +02:00\n");
    expect(result.stderr).toBe("kiln: note: trigger nightly is inactive: it creates none of these runs until its status is active\n");
  });

  test("--limit cuts the list, with a note on stderr", async () => {
    const result = await kiln(["trigger", "preview", "--schedule-interval", "* * * * *", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z", "--limit", "2", "--json"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(["2026-01-01T00:00:00.000Z", "2026-01-01T00:01:00.000Z"]);
    expect(result.stderr).toBe("kiln: note: showing the first 2 execution dates; more follow before 2026-01-02T00:00:00.000Z (raise --limit)\n");
  });

  test("the default limit is 1000", async () => {
    const result = await kiln(["trigger", "preview", "--schedule-interval", "* * * * *", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z", "--json"]);
    expect(JSON.parse(result.stdout)).toHaveLength(1000);
    expect(result.stderr).toContain("showing the first 1000 execution dates");
  });

  const errors: Array<{ name: string; args: () => string[]; message: RegExp }> = [
    { name: "an offset-less --from", args: () => ["--schedule-interval", "@daily", "--from", "2026-01-01T00:00", "--to", "2026-01-02"], message: /--from: .*add Z for UTC or an offset/ },
    { name: "a --to before --from", args: () => ["--schedule-interval", "@daily", "--from", "2026-01-02", "--to", "2026-01-01"], message: /--to: expected an instant after --from/ },
    { name: "no --to", args: () => ["--schedule-interval", "@daily", "--from", "2026-01-02"], message: /--to: required/ },
    { name: "an unknown --dst-gap", args: () => ["--schedule-interval", "@daily", "--dst-gap", "jump", "--from", "2026-01-01", "--to", "2026-01-02"], message: /--dst-gap: expected skip or shift, got "jump"/ },
    { name: "an unknown --dst-overlap", args: () => ["--schedule-interval", "@daily", "--dst-overlap", "x", "--from", "2026-01-01", "--to", "2026-01-02"], message: /--dst-overlap: expected one of first, last, both/ },
    { name: "a bad --schedule-interval", args: () => ["--schedule-interval", "61 * * * *", "--from", "2026-01-01", "--to", "2026-01-02"], message: /--schedule-interval: invalid schedule interval/ },
    { name: "@always_on", args: () => ["--schedule-interval", "@always_on", "--from", "2026-01-01", "--to", "2026-01-02"], message: /@always_on has no execution dates/ },
    { name: "a bad --limit", args: () => ["--schedule-interval", "@daily", "--from", "2026-01-01", "--to", "2026-01-02", "--limit", "0"], message: /--limit: expected a positive integer/ },
    { name: "neither a trigger nor --schedule-interval", args: () => ["--from", "2026-01-01", "--to", "2026-01-02"], message: /give <project> <pipeline> <name>, or --schedule-interval/ },
    { name: "a trigger and schedule flags", args: () => [project, "p", "nightly", "--timezone", "UTC", "--from", "2026-01-01", "--to", "2026-01-02"], message: /--timezone: only without <project> <pipeline> <name>/ },
    { name: "an unknown trigger", args: () => [project, "p", "nope", "--from", "2026-01-01", "--to", "2026-01-02"], message: /no trigger nope in pipeline p \(triggers: nightly, webhook\)/ },
    { name: "an api trigger", args: () => [project, "p", "webhook", "--from", "2026-01-01", "--to", "2026-01-02"], message: /trigger webhook is an api trigger: only time triggers have execution dates/ },
  ];
  for (const c of errors) {
    test(`exit 2: ${c.name}`, async () => {
      expectUsageError(await kiln(["trigger", "preview", ...c.args()]), c.message);
      expectNoDatabase();
    });
  }
});
