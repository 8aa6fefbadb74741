/**
 * What the fake cloud services (ECS, Cloud Run, Kubernetes) use as their "containers": the
 * container's command run as a local process with the container's environment, so a block run
 * started through a fake really runs `kiln run-block` and records its output. The image's
 * `kiln` entrypoint is this repository's CLI.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { CLI_MAIN } from "./fixtures.ts";

export interface FakeContainer {
  id: string;
  command: string[];
  env: Record<string, string>;
  /** "running" until the process ends; "exited" with its exit code (128 + signal when killed). */
  state: "running" | "exited";
  exitCode: number | null;
  /** Everything it wrote to stdout and stderr, in order. */
  output: string;
  startedAt: number;
  finishedAt: number | null;
}

/** Local processes standing in for containers; stop them all with `stopAll` in teardown. */
export class FakeContainers {
  readonly #processes = new Map<string, ChildProcess>();
  readonly containers = new Map<string, FakeContainer>();
  #next = 1;

  /** Starts a container running `command` (its first word `kiln` means kiln's CLI). */
  run(command: string[], env: Record<string, string>): FakeContainer {
    const [program, ...args] = command;
    if (!program) throw new Error("fake container: empty command");
    const argv = program === "kiln" ? [process.execPath, CLI_MAIN, ...args] : [program, ...args];
    const id = `fake-${process.pid}-${this.#next++}`;
    const container: FakeContainer = { id, command, env, state: "running", exitCode: null, output: "", startedAt: Date.now(), finishedAt: null };
    // the container sees only its own environment, plus what a process needs to start at all
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const collect = (chunk: Buffer) => {
      container.output += chunk.toString("utf8");
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    child.once("error", (error) => {
      container.output += `cannot start: ${error.message}\n`;
      container.state = "exited";
      container.exitCode = 127;
      container.finishedAt = Date.now();
    });
    child.once("close", (code, signal) => {
      container.state = "exited";
      container.exitCode = code ?? 128 + signalNumber(signal);
      container.finishedAt = Date.now();
      this.#processes.delete(id);
    });
    this.#processes.set(id, child);
    this.containers.set(id, container);
    return container;
  }

  /** SIGTERM to the container's process group, SIGKILL after `graceMs`, like `docker stop`. */
  stop(id: string, graceMs = 2_000): void {
    const child = this.#processes.get(id);
    if (!child?.pid) return;
    const pid = child.pid;
    kill(pid, "SIGTERM");
    setTimeout(() => kill(pid, "SIGKILL"), graceMs).unref();
  }

  /** Kills every container still running (teardown). */
  stopAll(): void {
    for (const child of this.#processes.values()) if (child.pid) kill(child.pid, "SIGKILL");
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : 0;
}
