/**
 * The CLI and the project files hold the same bounds as the API: names with control or bidi
 * characters, out-of-range instants and JSON nested too deeply are refused with exit code 2 and
 * a message naming the flag (or the file and field), before anything is written.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runKiln, TempDirs } from "../helpers/cli.ts";
import { ProjectLoadError } from "@kiln/core/project";
import { projectFixture } from "../helpers/fixtures.ts";

const dirs = new TempDirs();
afterAll(() => dirs.removeAll());

const PROJECT = {
  "kiln.yaml": "executor_config:\n  in_process: true\n",
  "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n",
  "custom/work.js": "export default () => 1;\n",
};

describe("CLI flags", () => {
  test("names with control or bidi characters: exit 2 naming the flag, nothing written", async () => {
    const root = dirs.project(PROJECT);
    for (const name of ["evil\u202egpj.exe", "tab\there", "iso\u2066late"]) {
      const key = await runKiln(["api-key", "create", "--project", root, "--role", "viewer", "--name", name]);
      expect({ name, code: key.code }).toEqual({ name, code: 2 });
      expect(key.stderr).toMatch(/--name: must not contain the (bidirectional )?control character U\+/);

      const backfill = await runKiln(["backfill", "create", root, "p", "--name", name, "--start", "2024-01-01", "--end", "2024-01-02", "--interval-type", "day"]);
      expect({ name, code: backfill.code }).toEqual({ name, code: 2 });
      expect(backfill.stderr).toContain("--name:");

      const trigger = await runKiln(["trigger", "add", root, "p", "--name", name, "--schedule-type", "api"]);
      expect({ name, code: trigger.code }).toEqual({ name, code: 2 });
      expect(trigger.stderr).toContain("--name");
    }
    expect(existsSync(join(root, "pipelines/p/triggers.yaml"))).toBe(false);
    expect(existsSync(join(root, ".kiln/kiln.db"))).toBe(false);
  }, 120_000);

  test("out-of-range instants and deep JSON: exit 2 naming the flag", async () => {
    // each is a kiln process start
    const root = dirs.project(PROJECT);
    const far = await runKiln(["trigger", "add", root, "p", "--name", "far", "--schedule-type", "time", "--schedule-interval", "@daily", "--start-time", "0000-01-01T00:00:00Z"]);
    expect(far.code).toBe(2);
    expect(far.stderr).toContain("--start-time");
    // one argument holds at most 128 KiB: 1,000 deep is far past the limit all the same
    const deep = `{"a":${"[".repeat(1_000)}${"]".repeat(1_000)}}`;
    const vars = await runKiln(["trigger", "add", root, "p", "--name", "deep", "--schedule-type", "api", "--variables", deep]);
    expect(vars.code).toBe(2);
    expect(vars.stderr).toContain("--variables: expected a JSON object nested at most");
    expect(existsSync(join(root, "pipelines/p/triggers.yaml"))).toBe(false);
  }, 60_000);
});

describe("project files", () => {
  test("a trigger name with a bidi character, a block name with a control character, a start_time out of range: refused naming the file and field", async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ ...PROJECT, "pipelines/p/triggers.yaml": "triggers:\n  - name: \"evil\\u202Egpj\"\n    schedule_type: api\n" }, /triggers\.yaml.*name/s],
      [{ ...PROJECT, "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    name: \"a\\u0000b\"\n    type: custom\n" }, /metadata\.yaml.*name/s],
      [{ ...PROJECT, "pipelines/p/triggers.yaml": "triggers:\n  - name: far\n    schedule_type: time\n    schedule_interval: '@daily'\n    start_time: '0000-06-01 00:00:00'\n" }, /triggers\.yaml.*start_time/s],
    ];
    for (const [files, message] of cases) {
      let error: unknown = null;
      try {
        (await projectFixture(files)).cleanup();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(message);
    }
    // the same characters in a quoted string that is not a name (a description) stay allowed
    const ok = await projectFixture({ ...PROJECT, "pipelines/p/triggers.yaml": "triggers:\n  - name: fine\n    schedule_type: api\n    description: \"tab\\there\"\n" });
    expect(ok.project.pipelines.get("p")?.triggers[0]?.name).toBe("fine");
    ok.cleanup();
    expect(readFileSync).toBeDefined();
  });

  test("variables nested deeper than a JSON body may be, in triggers.yaml, kiln.yaml or metadata.yaml: refused naming the file and field", async () => {
    // 65 mappings deep, in YAML's flow style and in its block style
    const flow = `${"{a: ".repeat(65)}1${"}".repeat(65)}`;
    const block = Array.from({ length: 65 }, (_, i) => `${" ".repeat(2 * i + 2)}k${i}:`).join("\n") + ` 1`;
    const cases: Array<[Record<string, string>, string, string]> = [
      [{ ...PROJECT, "pipelines/p/triggers.yaml": `triggers:\n  - name: deep\n    schedule_type: api\n    variables: ${flow}\n` }, "pipelines/p/triggers.yaml", "triggers[0].variables"],
      [{ ...PROJECT, "kiln.yaml": `executor_config:\n  in_process: true\nvariables:\n${block}\n` }, "kiln.yaml", "variables"],
      [{ ...PROJECT, "pipelines/p/metadata.yaml": `blocks:\n  - uuid: work\n    type: custom\nvariables:\n${block}\n` }, "pipelines/p/metadata.yaml", "variables"],
    ];
    for (const [files, file, field] of cases) {
      let error: unknown = null;
      try {
        (await projectFixture(files)).cleanup();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ProjectLoadError);
      expect({ file: (error as ProjectLoadError).file, field: (error as ProjectLoadError).field }).toEqual({ file, field });
      expect((error as Error).message).toContain("nested at most 64 levels deep");
    }
    // 64 deep is within the limit
    const within = `${"{a: ".repeat(64)}1${"}".repeat(64)}`;
    const ok = await projectFixture({ ...PROJECT, "pipelines/p/triggers.yaml": `triggers:\n  - name: deep\n    schedule_type: api\n    variables: ${within}\n` });
    ok.cleanup();
    // the CLI: exit 2, the file and field named, no stack trace, nothing written
    const root = dirs.project(cases[0]![0]);
    const run = await runKiln(["run", root, "p"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("triggers.yaml");
    expect(run.stderr).toContain("triggers[0].variables");
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(root, ".kiln/kiln.db"))).toBe(false);
  }, 60_000);
});
