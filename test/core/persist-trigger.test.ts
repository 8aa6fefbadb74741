/**
 * Writing triggers back to triggers.yaml: adds, updates, renames and removals that keep the
 * user's comments, key order and list style, whose output the project loader reads back, and
 * input checks that name the field at fault.
 */
import { describe, expect, test } from "bun:test";
import {
  formatTriggerStartTime,
  loadProject,
  parseTriggerStartTime,
  removeTriggerYaml,
  TriggerYamlError,
  upsertTriggerYaml,
  type ProjectSource,
  type TriggerConfig,
  type TriggerInput,
  type UpsertTriggerOptions,
} from "../../core/src/project/index.ts";

/** A project held in memory: one pipeline `p` with one block, and the given triggers.yaml. */
function memorySource(triggersYaml: string | null): ProjectSource {
  const files: Record<string, string> = {
    "kiln.yaml": "",
    "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n",
    "data_loaders/load.ts": "export default () => 1;\n",
  };
  if (triggersYaml !== null) files["pipelines/p/triggers.yaml"] = triggersYaml;
  return {
    root: "/memory",
    async readText(path) {
      return files[path] ?? null;
    },
    async list(path) {
      const prefix = `${path}/`;
      return [...new Set(Object.keys(files).filter((f) => f.startsWith(prefix)).map((f) => f.slice(prefix.length).split("/")[0]!))];
    },
    async importModule() {
      throw new Error("not needed");
    },
  };
}

/** The triggers the project loader reads from `text`, in prod (the file's triggers are limited to it). */
async function loadTriggers(text: string): Promise<TriggerConfig[]> {
  const project = await loadProject(memorySource(text), { env: "prod" });
  return project.pipelines.get("p")!.triggers;
}

/** The TriggerYamlError `call` throws. */
function errorOf(call: () => unknown): TriggerYamlError {
  try {
    call();
  } catch (error) {
    if (error instanceof TriggerYamlError) return error;
    throw error;
  }
  throw new Error("expected a TriggerYamlError");
}

const COMMENTED = `# Triggers of pipeline p: edited by hand and by kiln
triggers:
  # runs every night, after the warehouse load
  - name: nightly # do not rename: dashboards link to it
    schedule_type: time
    schedule_interval: '0 2 * * *'
    timezone: Europe/Paris
    status: active
    settings:
      # all: the finance report needs every day
      catch_up: all
    token: keep-me
    envs: [prod]

  # fired by the upstream system
  - name: on_demand
    schedule_type: api
`;

const HOURLY: TriggerInput = { name: "hourly", scheduleType: "time", scheduleInterval: "@hourly", status: "active" };

describe("upsertTriggerYaml: adding", () => {
  test("appends the trigger, keeping every comment and the other triggers' keys as written", async () => {
    const text = upsertTriggerYaml(COMMENTED, {
      ...HOURLY,
      timezone: "America/New_York",
      startTime: "2026-01-01T00:00:00-05:00",
      variables: { region: "us" },
      settings: { dst_gap: "skip" },
      sla: 600,
      description: "every hour",
    });
    // the original text is kept verbatim, the new trigger follows it (after a blank line, as the others are)
    expect(text.startsWith(COMMENTED)).toBe(true);
    expect(text.slice(COMMENTED.length)).toBe(`
  - name: hourly
    description: every hour
    schedule_type: time
    schedule_interval: '@hourly'
    start_time: 2026-01-01 05:00:00
    timezone: America/New_York
    status: active
    sla: 600
    variables:
      region: us
    settings:
      dst_gap: skip
`);
    const triggers = await loadTriggers(text);
    expect(triggers.map((t) => t.name)).toEqual(["nightly", "on_demand", "hourly"]);
    expect(triggers[2]).toMatchObject({
      scheduleType: "time",
      scheduleInterval: "@hourly",
      startTime: Date.UTC(2026, 0, 1, 5),
      timezone: "America/New_York",
      status: "active",
      variables: { region: "us" },
      settings: { dst_gap: "skip" },
      sla: 600,
      description: "every hour",
    });
  });

  test("creates the file when there is none, and fills an empty or comment-only file", async () => {
    const fresh = upsertTriggerYaml(null, HOURLY);
    expect(fresh).toBe("triggers:\n  - name: hourly\n    schedule_type: time\n    schedule_interval: '@hourly'\n    status: active\n");
    expect((await loadTriggers(fresh)).map((t) => t.name)).toEqual(["hourly"]);
    for (const existing of ["", "triggers:\n", "triggers: []\n", "# none yet\ntriggers: []\n"]) {
      const text = upsertTriggerYaml(existing, HOURLY);
      expect((await loadTriggers(text)).map((t) => t.name)).toEqual(["hourly"]);
      if (existing.startsWith("#")) expect(text).toStartWith("# none yet\n");
    }
  });

  test("keeps Mage's unindented list style", async () => {
    const mage = "triggers:\n- name: daily\n  schedule_type: time\n  schedule_interval: '@daily'\n";
    const text = upsertTriggerYaml(mage, HOURLY);
    expect(text).toBe(`${mage}- name: hourly\n  schedule_type: time\n  schedule_interval: '@hourly'\n  status: active\n`);
    expect((await loadTriggers(text)).map((t) => t.name)).toEqual(["daily", "hourly"]);
  });

  test("mode add refuses a name that exists; upsert updates it instead", async () => {
    expect(errorOf(() => upsertTriggerYaml(COMMENTED, { ...HOURLY, name: "nightly" }, { mode: "add" }))).toMatchObject({
      field: "name",
      message: 'name: a trigger named "nightly" already exists',
    });
    const text = upsertTriggerYaml(COMMENTED, { name: "nightly", status: "inactive" });
    expect((await loadTriggers(text)).find((t) => t.name === "nightly")!.status).toBe("inactive");
  });
});

describe("upsertTriggerYaml: updating", () => {
  test("changes only the given keys, in place: comments, quoting, other keys and unknown keys stay", async () => {
    const text = upsertTriggerYaml(COMMENTED, { name: "nightly", scheduleInterval: "30 3 * * *", status: "inactive", sla: 120 }, { mode: "update" });
    expect(text).toBe(
      COMMENTED.replace("'0 2 * * *'", "'30 3 * * *'")
        .replace("status: active", "status: inactive")
        .replace("    envs: [prod]\n", "    envs: [prod]\n    sla: 120\n"),
    );
    const [nightly] = await loadTriggers(text);
    expect(nightly).toMatchObject({ scheduleInterval: "30 3 * * *", status: "inactive", sla: 120, token: "keep-me", envs: ["prod"], timezone: "Europe/Paris" });
  });

  test("null removes a key, so the loader's default applies", async () => {
    const text = upsertTriggerYaml(COMMENTED, { name: "nightly", timezone: null, status: null });
    expect(text).not.toContain("timezone:");
    const [nightly] = await loadTriggers(text);
    expect(nightly).toMatchObject({ timezone: "UTC", status: "inactive" });
    expect(errorOf(() => upsertTriggerYaml(COMMENTED, { name: "nightly", scheduleType: null })).field).toBe("schedule_type");
  });

  test("variables and settings replace the whole mapping; a kept key keeps its comment", async () => {
    const text = upsertTriggerYaml(COMMENTED, { name: "nightly", settings: { catch_up: "latest", overlap: "skip" } });
    expect(text).toContain("    settings:\n      # all: the finance report needs every day\n      catch_up: latest\n      overlap: skip\n");
    const [nightly] = await loadTriggers(text);
    expect(nightly!.settings).toEqual({ catch_up: "latest", overlap: "skip" });
    const cleared = upsertTriggerYaml(text, { name: "nightly", settings: {} });
    expect((await loadTriggers(cleared))[0]!.settings).toEqual({});
  });

  test("renames with oldName, keeping the trigger's place and comments", async () => {
    const text = upsertTriggerYaml(COMMENTED, { name: "nightly_eu" }, { oldName: "nightly" });
    expect(text).toBe(COMMENTED.replace("- name: nightly #", "- name: nightly_eu #"));
    expect((await loadTriggers(text)).map((t) => t.name)).toEqual(["nightly_eu", "on_demand"]);
  });

  test("a rename onto another trigger's name, or of a trigger that does not exist, is refused", () => {
    expect(errorOf(() => upsertTriggerYaml(COMMENTED, { name: "on_demand" }, { oldName: "nightly" })).message).toBe(
      'name: cannot rename "nightly" to "on_demand": a trigger with that name already exists',
    );
    expect(errorOf(() => upsertTriggerYaml(COMMENTED, { name: "x" }, { oldName: "missing" })).message).toBe(
      'name: no trigger named "missing" (triggers: nightly, on_demand)',
    );
    const update: UpsertTriggerOptions = { mode: "update" };
    expect(errorOf(() => upsertTriggerYaml(COMMENTED, { name: "missing", status: "active" }, update)).message).toBe(
      'name: no trigger named "missing" (triggers: nightly, on_demand)',
    );
  });

  test("a trigger the loader returned round-trips unchanged", async () => {
    const [nightly] = await loadTriggers(COMMENTED);
    const text = upsertTriggerYaml(COMMENTED, nightly!);
    const [again] = await loadTriggers(text);
    expect(again).toEqual(nightly!);
    // camelCase settings from the loader are written in the file's snake_case
    const withKnown = upsertTriggerYaml(COMMENTED, { name: "nightly", settings: { skipIfPreviousRunning: true, catch_up: "all" } });
    expect(withKnown).toContain("skip_if_previous_running: true");
    expect((await loadTriggers(withKnown))[0]!.settings).toEqual({ skipIfPreviousRunning: true, catch_up: "all" });
  });
});

describe("removeTriggerYaml", () => {
  test("removes the trigger with the comment attached to it; the rest stays as written", async () => {
    const text = removeTriggerYaml(COMMENTED, "on_demand");
    expect(text).toBe(COMMENTED.slice(0, COMMENTED.indexOf("\n\n  # fired by")) + "\n");
    expect((await loadTriggers(text)).map((t) => t.name)).toEqual(["nightly"]);
  });

  test("removing the first trigger takes the comment above it too", async () => {
    const text = removeTriggerYaml(COMMENTED, "nightly");
    expect(text).toBe("# Triggers of pipeline p: edited by hand and by kiln\ntriggers:\n  # fired by the upstream system\n  - name: on_demand\n    schedule_type: api\n");
    expect((await loadTriggers(text)).map((t) => t.name)).toEqual(["on_demand"]);
  });

  test("removing the last trigger leaves an empty list that loads", async () => {
    const text = removeTriggerYaml(removeTriggerYaml(COMMENTED, "on_demand"), "nightly");
    expect(text).toBe("# Triggers of pipeline p: edited by hand and by kiln\ntriggers: []\n");
    expect(await loadTriggers(text)).toEqual([]);
  });

  test("an unknown name, or no file, is an error naming the triggers there are", () => {
    expect(errorOf(() => removeTriggerYaml(COMMENTED, "nope")).message).toBe('name: no trigger named "nope" (triggers: nightly, on_demand)');
    expect(errorOf(() => removeTriggerYaml(null, "nope")).field).toBe("name");
    expect(errorOf(() => removeTriggerYaml("triggers: []\n", "nope")).message).toContain("(triggers: none)");
  });
});

describe("validation: an error naming the field, and nothing returned", () => {
  const cases: Array<{ name: string; input: Partial<TriggerInput>; field: string; message: string }> = [
    { name: "an empty name", input: { name: " " }, field: "name", message: "expected a non-empty string" },
    { name: "an unknown schedule type", input: { scheduleType: "cron" as never }, field: "schedule_type", message: 'expected one of time, event, api, got "cron"' },
    { name: "a new trigger without a schedule type", input: { scheduleType: undefined }, field: "schedule_type", message: "required for a new trigger" },
    { name: "a time trigger without an interval", input: { scheduleInterval: undefined }, field: "schedule_interval", message: "required for a time trigger" },
    { name: "a cron with 4 fields", input: { scheduleInterval: "0 0 * *" }, field: "schedule_interval", message: "a cron expression has 5 fields" },
    { name: "an unknown preset", input: { scheduleInterval: "@weekdays" }, field: "schedule_interval", message: "unknown preset" },
    { name: "a cron that never matches", input: { scheduleInterval: "0 0 30 2 *" }, field: "schedule_interval", message: "never matches" },
    { name: "an unknown time zone", input: { timezone: "Mars/Olympus" }, field: "timezone", message: 'got "Mars/Olympus"' },
    { name: "an unknown status", input: { status: "on" as never }, field: "status", message: "expected one of active, inactive" },
    { name: "a start time that is not a date", input: { startTime: "2026-02-30 00:00:00" }, field: "start_time", message: '"2026-02-30 00:00:00"' },
    { name: "a negative sla", input: { sla: -1 }, field: "sla", message: "expected a positive number of seconds, got -1" },
    { name: "variables that are a list", input: { variables: [1] as never }, field: "variables", message: "expected an object, got [1]" },
    { name: "an unknown dst_gap", input: { settings: { dst_gap: "jump" } }, field: "settings.dst_gap", message: 'expected one of skip, shift, got "jump"' },
    { name: "a timeout that is not a number", input: { settings: { timeout: "1h" } }, field: "settings.timeout", message: "expected a positive number" },
    { name: "a boolean setting that is a string", input: { settings: { allow_blocks_to_fail: "yes" } }, field: "triggers[2].settings.allow_blocks_to_fail", message: "expected true or false" },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const error = errorOf(() => upsertTriggerYaml(COMMENTED, { ...HOURLY, ...c.input } as TriggerInput));
      expect(error.field).toBe(c.field);
      expect(error.message).toStartWith(`${c.field}: `);
      expect(error.message).toContain(c.message);
    });
  }

  test("a file that is not YAML, or not a mapping of triggers, is refused before anything is changed", () => {
    expect(errorOf(() => upsertTriggerYaml("triggers: [\n", HOURLY)).message).toMatch(/not valid YAML: .* at line \d+, column \d+/);
    expect(errorOf(() => upsertTriggerYaml("- a\n- b\n", HOURLY)).message).toContain("expected a mapping with a triggers key");
    expect(errorOf(() => upsertTriggerYaml("triggers: 3\n", HOURLY)).field).toBe("triggers");
  });

  test("a problem elsewhere in the file is reported with its path, since the result would not load", () => {
    const broken = "triggers:\n  - name: old\n    schedule_type: time\n    schedule_interval: '@daily'\n    sla: -5\n";
    expect(errorOf(() => upsertTriggerYaml(broken, HOURLY))).toMatchObject({ field: "triggers[0].sla", message: "triggers[0].sla: expected a positive number, got -5" });
  });
});

describe("start_time", () => {
  test("reads what the loader reads, and writes Mage's UTC form", () => {
    expect(parseTriggerStartTime("2026-01-01 00:00:00")).toBe(Date.UTC(2026, 0, 1));
    expect(parseTriggerStartTime("2026-01-01T02:00:00+02:00")).toBe(Date.UTC(2026, 0, 1));
    expect(parseTriggerStartTime(Date.UTC(2026, 0, 1))).toBe(Date.UTC(2026, 0, 1));
    expect(parseTriggerStartTime("tomorrow")).toBeNull();
    expect(parseTriggerStartTime(1.5)).toBeNull();
    expect(formatTriggerStartTime(Date.UTC(2026, 0, 1, 5, 6, 7))).toBe("2026-01-01 05:06:07");
    expect(formatTriggerStartTime(Date.UTC(2026, 0, 1, 5, 6, 7, 89))).toBe("2026-01-01T05:06:07.089Z");
  });
});
