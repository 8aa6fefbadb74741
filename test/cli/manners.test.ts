/**
 * The CLI's manners, every command as a real child process: `kiln <command> --help` and
 * `kiln help <command>` print its usage and exit 0, an unknown flag exits 2 naming the flag
 * with the usage, `kiln --version` prints the cli package's version, and `--help`, `--version`
 * and `run-block` load only what they use (traced with a Bun preload that records each import).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { COMMAND_USAGE, SUBCOMMAND_USAGE } from "../../cli/src/usage.ts";
import { CLI_MAIN, REPO_ROOT, TempDirs } from "../helpers/cli.ts";

const temp = new TempDirs();
afterAll(() => temp.removeAll());

function kiln(args: string[], options: { preload?: string; env?: Record<string, string> } = {}) {
  const pre = options.preload ? ["--preload", options.preload] : [];
  const result = spawnSync(process.execPath, [...pre, CLI_MAIN, ...args], { cwd: temp.make("kiln-cwd-"), encoding: "utf8", env: { ...process.env, ...options.env } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const COMMANDS = Object.keys(COMMAND_USAGE);
const SUBCOMMANDS = Object.entries(SUBCOMMAND_USAGE).flatMap(([command, subs]) =>
  Object.keys(subs).filter((sub) => sub !== "previewFlags").map((sub) => [command, sub] as const),
);

describe("help", () => {
  test("there is a usage for every command main.ts dispatches", () => {
    const dispatched = [...readFileSync(CLI_MAIN, "utf8").matchAll(/^\s+"?([a-z-]+)"?: async \(\) => \(await import\("\.\/commands\//gm)].map((m) => m[1]);
    expect(dispatched.sort()).toEqual([...COMMANDS].sort());
  });

  for (const command of COMMANDS) {
    test(`kiln ${command} --help and kiln help ${command} print its usage, exit 0`, () => {
      for (const args of [[command, "--help"], [command, "-h"], ["help", command]]) {
        const result = kiln(args);
        expect(result.stderr).toBe("");
        expect(result.code).toBe(0);
        expect(result.stdout).toContain(`kiln ${command}`);
        expect(result.stdout).toContain(COMMAND_USAGE[command]!.split("\n")[0]!);
      }
    });
  }

  for (const [command, sub] of SUBCOMMANDS) {
    test(`kiln ${command} ${sub} --help prints that subcommand's usage`, () => {
      const result = kiln([command, sub, "--help"]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain((SUBCOMMAND_USAGE as Record<string, Record<string, string>>)[command]![sub]!);
    });
  }

  test("kiln --help lists every command; kiln help alone too; bare kiln is a usage error", () => {
    for (const args of [["--help"], ["help"]]) {
      const result = kiln(args);
      expect(result.code).toBe(0);
      for (const command of COMMANDS) expect(result.stdout).toContain(`kiln ${command}`);
    }
    const bare = kiln([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("kiln run");
  });

  test("kiln help <unknown> exits 2 naming it", () => {
    const result = kiln(["help", "deploy"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown command deploy");
  });

  test("--help after -- is an argument, not a request for help", () => {
    const result = kiln(["init", "--", "--help"]);
    // init takes one path: "--help" here is that path's name, so it ran init instead of printing help
    expect(result.stdout).not.toContain("usage:");
  });
});

describe("unknown flags", () => {
  for (const command of COMMANDS.filter((c) => !(c in SUBCOMMAND_USAGE))) {
    test(`kiln ${command} --bogus-flag exits 2, names the flag and prints the usage`, () => {
      const result = kiln([command, "--bogus-flag"]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("unknown option '--bogus-flag'");
      expect(result.stderr).toContain(`usage:\n  ${COMMAND_USAGE[command]}`);
      expect(result.stdout).toBe("");
    });
  }
  for (const [command, sub] of SUBCOMMANDS) {
    test(`kiln ${command} ${sub} --bogus-flag exits 2, names the flag and prints the usage`, () => {
      const result = kiln([command, sub, "--bogus-flag"]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`kiln ${command} ${sub}: unknown option '--bogus-flag'`);
      expect(result.stderr).toContain((SUBCOMMAND_USAGE as Record<string, Record<string, string>>)[command]![sub]!);
    });
  }
  test("a flag missing its value names the flag", () => {
    const result = kiln(["run", "proj", "pipe", "--runtime-vars"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--runtime-vars");
    expect(result.stderr).toContain("usage:");
  });
});

describe("version", () => {
  test("kiln --version prints the cli package's version", () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "cli/package.json"), "utf8")) as { version: string };
    const result = kiln(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`kiln ${version}\n`);
  });
});

describe("lean start", () => {
  const PRELOAD = join(REPO_ROOT, "test/cli/fixtures/trace-imports.ts");

  function traced(args: string[]): { result: ReturnType<typeof kiln>; imports: string[] } {
    const file = join(temp.make("kiln-trace-"), "imports.txt");
    const result = kiln(args, { preload: PRELOAD, env: { KILN_TRACE_IMPORTS: file } });
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      // nothing resolved
    }
    return { result, imports: text.split("\n").filter(Boolean) };
  }

  test("--version and --help load main.ts's own small modules only", () => {
    for (const args of [["--version"], ["--help"], ["start", "--help"], ["help", "trigger"]]) {
      const { result, imports } = traced(args);
      expect(result.code).toBe(0);
      const cli = join(REPO_ROOT, "cli");
      expect(imports.filter((path) => path !== PRELOAD).sort()).toEqual(
        ["package.json", "src/errors.ts", "src/kiln-env.ts", "src/main.ts", "src/usage.ts", "src/version.ts"].map((file) => join(cli, file)),
      );
    }
  });

  test("run-block imports no server, scheduler or remote-executor package", () => {
    const project = temp.project({ "kiln.yaml": "executor_type: local\n", "pipelines/p/metadata.yaml": "blocks:\n  - uuid: a\n    type: data_loader\n", "data_loaders/a.js": "export default () => 1;\n" });
    const { result, imports } = traced(["run-block", project, "p", "a", "--pipeline-run-id", "1", "--block-run-id", "1"]);
    // no such run in the fresh database: a usage error, after the project and database were opened
    expect(result.stderr).toContain("--pipeline-run-id: no run 1");
    expect(result.code).toBe(2);
    expect(imports).toContain(join(REPO_ROOT, "core/src/index.ts"));
    const heavy = imports.filter((path) =>
      /\/(server|scheduler|worker)\/src\/|\/plugins\/executor-(docker|kubernetes|ecs|cloud-run)\/|\/node_modules\/(dockerode|ioredis|@aws-sdk|@smithy|@google-cloud|@kubernetes|protobufjs|ssh2)\//.test(path),
    );
    expect(heavy).toEqual([]);
  });
});
