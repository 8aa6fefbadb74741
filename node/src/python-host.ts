/**
 * Python blocks run by an interpreter in their own process, through the runner shipped with kiln
 * (node/python, found next to this file so it works wherever kiln is run from). The interpreter
 * is KILN_PYTHON, else kiln.yaml's `python`, else the first `python3` on PATH.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { eachLine } from "./lines.ts";
import { BlockError, messageOf } from "@kiln/core";
import { PythonBlockError, type PythonHost, type PythonOutcome, type PythonRequest, type PythonSession } from "@kiln/core/runtime";

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
  /**
   * Keep an interpreter started ahead (`run_block.py --warm`: kiln's runner and, where installed,
   * pandas imported), handed the next request: each Python run still gets a fresh process.
   * Without it a run still takes a spare started ahead (startSpareInterpreter) if one waits.
   */
  warm?: boolean;
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

/** An interpreter started ahead of its request, for `key` (interpreter, folder, process group). */
interface SpareInterpreter {
  key: string;
  child: ChildProcessWithoutNullStreams;
  ended: boolean;
}

/** One spare interpreter per interpreter, folder and group mode, shared by the hosts of one process. */
const spares = new Map<string, SpareInterpreter>();

function spareKey(options: PythonHostOptions, cwd: string): string {
  return JSON.stringify([options.interpreter, cwd, options.ownProcessGroup]);
}

/** Starts the interpreter with kiln's runner in `cwd`; `warm`: it imports ahead while it waits for its request. */
function startInterpreter(options: PythonHostOptions, cwd: string, warm: boolean): ChildProcessWithoutNullStreams {
  return spawn(options.interpreter, ["-u", join(PYTHON_RUNNER_DIR, "run_block.py"), ...(warm ? ["--warm"] : [])], {
    cwd,
    env: { ...(options.env ?? process.env), PYTHONUNBUFFERED: "1", PYTHONIOENCODING: "utf-8" },
    stdio: ["pipe", "pipe", "pipe"],
    detached: options.ownProcessGroup,
  });
}

/** Starts a spare interpreter for runs in `cwd`, unless one waits already (the Python host's `warm`). */
export function startSpareInterpreter(options: PythonHostOptions, cwd: string): void {
  const key = spareKey(options, cwd);
  if (spares.has(key)) return;
  const child = startInterpreter(options, cwd, true);
  const spare: SpareInterpreter = { key, child, ended: false };
  const gone = () => {
    spare.ended = true;
    if (spares.get(key) === spare) spares.delete(key);
    if (child.pid !== undefined) live.delete(child.pid);
  };
  // a missing interpreter: the run that would take this spare starts its own and reports it
  child.once("error", gone);
  child.once("exit", gone);
  child.stdin?.on("error", () => {});
  // a spare keeps no kiln process alive; a claimed one does, as any interpreter running a block
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
  if (child.pid !== undefined && options.ownProcessGroup) live.add(child.pid);
  spares.set(key, spare);
}

/** The pids of the spare interpreters waiting now (a reused block process keeps them between runs). */
export function spareInterpreterPids(): number[] {
  return [...spares.values()].flatMap((spare) => (spare.child.pid === undefined || spare.ended ? [] : [spare.child.pid]));
}

/** The spare interpreter for `cwd`, taken (it is no longer a spare), or null. */
function takeSpare(options: PythonHostOptions, cwd: string): ChildProcessWithoutNullStreams | null {
  const key = spareKey(options, cwd);
  const spare = spares.get(key);
  if (!spare) return null;
  spares.delete(key);
  if (spare.ended || spare.child.exitCode !== null || spare.child.signalCode !== null) return null;
  spare.child.removeAllListeners("exit");
  spare.child.removeAllListeners("error");
  spare.child.ref();
  for (const stream of [spare.child.stdin, spare.child.stdout, spare.child.stderr]) (stream as { ref?: () => void } | null)?.ref?.();
  return spare.child;
}

/** A PythonHost starting `interpreter` with kiln's runner for each Python file. */
export function pythonHost(options: PythonHostOptions): PythonHost {
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
        // a spare started for this folder (by this host, or ahead by a warm kiln process) if one waits
        const child = takeSpare(options, request.project_root) ?? startInterpreter(options, request.project_root, false);
        // the next Python run finds one waiting
        if (options.warm) startSpareInterpreter(options, request.project_root);
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
                  (error: unknown) => reply({ id, error: messageOf(error) }),
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

