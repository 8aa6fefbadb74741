/**
 * Python blocks run by an interpreter in their own process, through the runner shipped with kiln
 * (node/python, found next to this file so it works wherever kiln is run from). The interpreter
 * is KILN_PYTHON, else kiln.yaml's `python`, else the first `python3` on PATH.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { eachLine } from "./lines.ts";
import { BlockError, PythonBlockError, type PythonHost, type PythonOutcome, type PythonRequest, type PythonSession } from "@kiln/core";

/** The folder holding kiln's Python runner and its mage_ai stand-in modules. */
export const PYTHON_RUNNER_DIR = resolve(import.meta.dirname, "../python");

/** The environment variable naming the interpreter for Python blocks (wins over kiln.yaml's `python`). */
export const PYTHON_ENV = "KILN_PYTHON";

export interface PythonInterpreter {
  /** What was asked for: a path or a command name. */
  requested: string;
  /** Where it was asked for, for messages. */
  from: string;
  /** The executable found, or null when there is none. */
  path: string | null;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Finds the interpreter for a project's Python blocks (it may be missing: path null). */
export function resolvePythonInterpreter(projectRoot: string, configured: string | null | undefined, env: Record<string, string | undefined> = process.env): PythonInterpreter {
  const fromEnv = env[PYTHON_ENV];
  const [requested, from] = fromEnv ? [fromEnv, PYTHON_ENV] : configured ? [configured, "kiln.yaml python"] : ["python3", "the default (python3 on PATH)"];
  if (requested.includes("/")) {
    const path = isAbsolute(requested) ? requested : resolve(projectRoot, requested);
    return { requested, from, path: isExecutable(path) ? path : null };
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, requested);
    if (isExecutable(candidate)) return { requested, from, path: candidate };
  }
  return { requested, from, path: null };
}

/** The message for an interpreter that is not there, naming the blocks that need it. */
export function missingPythonMessage(interpreter: PythonInterpreter, blocks: string[]): string {
  return (
    `Python blocks need an interpreter, and ${interpreter.requested} (${interpreter.from}) was not found` +
    ` (set ${PYTHON_ENV} or kiln.yaml's python to one): ${blocks.join(", ")}`
  );
}

export interface PythonHostOptions {
  interpreter: string;
  /**
   * Start each interpreter in a process group of its own, killed whole on cancel (for a block run
   * inside a long-lived kiln process). false inside `kiln run-block`, whose own group the executor kills.
   */
  ownProcessGroup: boolean;
  /** Milliseconds between SIGTERM and SIGKILL on cancel. */
  killGraceMs?: number;
  env?: Record<string, string | undefined>;
}

const live = new Set<number>();
let exitHookInstalled = false;

function kill(pid: number, group: boolean, signal: NodeJS.Signals): void {
  try {
    process.kill(group ? -pid : pid, signal);
  } catch {
    // already gone
  }
}

const TAIL = 20;

/** A PythonHost starting `interpreter` with kiln's runner for each Python file. */
export function pythonHost(options: PythonHostOptions): PythonHost {
  const script = join(PYTHON_RUNNER_DIR, "run_block.py");
  const grace = options.killGraceMs ?? 2000;
  if (options.ownProcessGroup && !exitHookInstalled) {
    exitHookInstalled = true;
    // a kiln that exits leaves no interpreter behind
    process.on("exit", () => {
      for (const pid of live) kill(pid, true, "SIGKILL");
    });
  }
  return {
    interpreter: options.interpreter,
    run(request: PythonRequest, session: PythonSession): Promise<PythonOutcome> {
      return new Promise<PythonOutcome>((resolvePromise, reject) => {
        if (session.signal.aborted) return reject(new BlockError("block run cancelled"));
        const child = spawn(options.interpreter, ["-u", script], {
          cwd: request.project_root,
          env: { ...(options.env ?? process.env), PYTHONUNBUFFERED: "1", PYTHONIOENCODING: "utf-8" },
          stdio: ["pipe", "pipe", "pipe"],
          detached: options.ownProcessGroup,
        });
        const pid = child.pid;
        const group = options.ownProcessGroup;
        if (pid !== undefined && group) live.add(pid);
        let outcome: PythonOutcome | null = null;
        let failure: PythonBlockError | null = null;
        let cancelled = false;
        let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
        let stdoutEnded = false;
        const stderrTail: string[] = [];
        let settled = false;

        const reply = (message: object) => {
          if (child.stdin.writable) child.stdin.write(`${JSON.stringify(message)}\n`);
        };
        child.stdin.on("error", () => {
          // the interpreter ended before reading a reply: its exit says why
        });
        const onAbort = () => {
          cancelled = true;
          if (pid === undefined) return;
          kill(pid, group, "SIGTERM");
          const timer = setTimeout(() => kill(pid, group, "SIGKILL"), grace);
          timer.unref?.();
        };
        session.signal.addEventListener("abort", onAbort, { once: true });

        const finish = () => {
          if (settled || !exited || !stdoutEnded) return;
          settled = true;
          session.signal.removeEventListener("abort", onAbort);
          if (pid !== undefined) {
            live.delete(pid);
            // whatever the file started and left running in its group goes with it
            if (group) kill(pid, true, "SIGKILL");
          }
          if (cancelled) return reject(new BlockError("block run cancelled"));
          if (failure) return reject(failure);
          if (outcome && exited.code === 0) return resolvePromise(outcome);
          const how = exited.signal ? `was killed by ${exited.signal}` : `exited with code ${exited.code}`;
          const tail = stderrTail.join("\n").trim();
          reject(new PythonBlockError(`the Python process (${options.interpreter}) ${how} before reporting a result${tail ? `: ${tail}` : ""}`, "process"));
        };

        eachLine(child.stdout, (line) => {
          let message: { t?: string; [key: string]: unknown };
          try {
            message = JSON.parse(line) as typeof message;
          } catch {
            session.log("stdout", line);
            return;
          }
          switch (message.t) {
            case "log":
              session.log(String(message.level ?? "info"), String(message.line ?? ""));
              break;
            case "call": {
              const id = message.id;
              session
                .call(String(message.method), (message.params ?? {}) as Record<string, unknown>)
                .then(
                  (result) => reply({ id, result: result ?? null }),
                  (error: unknown) => reply({ id, error: error instanceof Error ? error.message : String(error) }),
                );
              break;
            }
            case "done":
              outcome = { output: message.output, condition: message.condition as boolean | undefined, called: message.called as number | undefined };
              break;
            case "failed":
              failure = new PythonBlockError(String(message.error ?? "the Python block failed"), message.kind === "tests" ? "tests" : "exception");
              break;
            default:
              session.log("stdout", line);
          }
        }, () => {
          stdoutEnded = true;
          finish();
        });
        eachLine(child.stderr, (line) => {
          stderrTail.push(line);
          if (stderrTail.length > TAIL) stderrTail.shift();
          session.log("stderr", line);
        });
        child.once("error", (error) => {
          if (settled) return;
          settled = true;
          session.signal.removeEventListener("abort", onAbort);
          if (pid !== undefined) live.delete(pid);
          reject(new BlockError(`cannot start the Python interpreter ${options.interpreter}: ${error.message} (set ${PYTHON_ENV} or kiln.yaml's python)`));
        });
        child.once("exit", (code, signal) => {
          exited = { code, signal };
          finish();
        });
        child.stdin.write(`${JSON.stringify(request)}\n`);
      });
    },
  };
}

