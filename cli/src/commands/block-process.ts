/**
 * `kiln run-block --warm --thin <project>`: the local executor's warm block process for
 * TypeScript and JavaScript blocks. It boots to the point where only the block run is missing
 * (the runtime and stdin; @kiln/core is loaded by the first block that imports it) and waits. kiln, which has
 * the project, the store and the outputs, hands it the block run with everything resolved (see
 * BlockCall in @kiln/executor-local): this process imports the block's module, calls it with its
 * context and records the output in the result file, which kiln stores. No project loader, store
 * client, output store or credentials here: a secret or ctx.triggerPipeline is asked of kiln.
 * It runs one block run and exits with its code (0 returned, 1 threw), as `kiln run-block` does,
 * or with executor_config.reuse the next one it is handed, the project's modules imported afresh.
 */
// the block-call subpath, not @kiln/core's root entry: see block-call-kit.ts
import {
  blockFunction,
  callBlock,
  createBlockLogger,
  encodeBlockOutput,
  jobContext,
  systemClock,
  TriggerPipelineError,
  type BlockContext,
  type LogSink,
  type PipelineRun,
} from "@kiln/core/block-call";
import { SecretMask } from "@kiln/core/secret-mask";
import {
  BLOCK_FAILED_MARK,
  WORKER_MARK,
  type RecordedResult,
  type WarmBlockRun,
  type WorkerQuestion,
  type WorkerReply,
} from "@kiln/executor-local/warm-protocol";
import { scrubBlockEnvironment } from "../kiln-env.ts";
import { absolutePath } from "../posix-paths.ts";
import { stdinLines, type StdinLines } from "../stdin-lines.ts";

interface BunWriter {
  write(path: string, data: string): Promise<number>;
}

/**
 * Records the block run's outcome in its result file. On Bun with Bun.write: loading node:fs
 * costs Bun some 2.5 ms of CPU, more than a no-op block run takes here. The file is written in
 * place, not renamed into place: kiln reads it after this process said the run ended (or, after
 * a restart, once the process is gone), and a file cut short by a kill reads as no outcome, as
 * if the kill had come before. kiln made its folder (owner only; Bun.write would make a missing one).
 */
async function recordResult(path: string, result: RecordedResult): Promise<void> {
  const { Bun } = globalThis as { Bun?: BunWriter };
  if (Bun) await Bun.write(path, JSON.stringify(result));
  else (await import("@kiln/executor-local/result-file")).writeResult(path, result);
}

/** Writes a line to stdout: console's writer is ready at start, process.stdout costs Bun ~20 ms to build. */
const say = (line: string) => console.log(line);

/** kiln's answers to this process's questions, read from stdin while one is awaited. */
class Asker {
  #next = 1;
  readonly #waiting = new Map<number, (reply: WorkerReply) => void>();
  #pumping = false;

  constructor(private readonly lines: StdinLines) {}

  ask(question: WorkerQuestion): Promise<WorkerReply> {
    const id = this.#next++;
    const answered = new Promise<WorkerReply>((resolveReply) => this.#waiting.set(id, resolveReply));
    say(`${WORKER_MARK}ask ${JSON.stringify({ ...question, id })}`);
    void this.#pump();
    return answered;
  }

  /** Reads stdin while an answer is awaited; kiln hands no block run while this one runs. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#waiting.size > 0) {
        const line = await this.lines.next();
        if (line === null) {
          for (const [id, answer] of this.#waiting) answer({ reply: id, error: { message: "kiln ended before it answered", trigger: false, run: null } });
          this.#waiting.clear();
          return;
        }
        const reply = JSON.parse(line) as WorkerReply;
        this.#waiting.get(reply.reply)?.(reply);
        this.#waiting.delete(reply.reply);
      }
    } finally {
      this.#pumping = false;
    }
  }
}

/** ctx.logger's lines go to kiln on stdout, marked, and kiln keeps them in the block run's log as they are. */
const logSink: LogSink = {
  append(_pipelineUuid, _partition, _blockUuid, text) {
    for (const line of text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n")) say(`${WORKER_MARK}log ${line}`);
  },
};

/** Runs one block run; 0 when the block returned (its output recorded), 1 when it threw. */
async function runCall(run: WarmBlockRun, asker: Asker): Promise<number> {
  const { job, call, resultFile } = run;
  const controller = new AbortController();
  const abort = () => controller.abort();
  // kiln masks what it records of this run's output; the result file is written here, with the
  // secrets this run was given masked out of its error
  const mask = new SecretMask();
  process.once("SIGTERM", abort);
  // A block whose promise never settles while nothing else keeps the event loop alive would
  // let this process exit 0: fail it instead (before main.ts's generic guard, which would exit 70).
  const neverSettled = () => {
    console.error(`${BLOCK_FAILED_MARK}the block's promise never settled (the process had nothing left to wait for)`);
    process.exit(1);
  };
  process.prependOnceListener("beforeExit", neverSettled);
  // nothing kiln itself holds is left in the environment the block sees
  scrubBlockEnvironment();
  try {
    if (!call) throw new Error("kiln handed this thin block process a block run without its call (a kiln of another version?)");
    const fn = blockFunction(await import(absolutePath(job.projectRoot, call.modulePath)), call.modulePath, call.spec.type);
    const logger = createBlockLogger(logSink, () => Date.now(), { pipelineUuid: job.pipelineUuid, partition: job.executionPartition, blockUuid: job.blockUuid });
    const context: BlockContext = {
      ...jobContext(job, call.variables),
      secrets: {
        async get(name) {
          const answer = await asker.ask({ op: "secret", name });
          if (answer.error) throw new Error(answer.error.message);
          const value = String(answer.value);
          mask.add(value);
          return value;
        },
      },
      logger,
      signal: controller.signal,
      async triggerPipeline(pipelineUuid, options = {}) {
        const { signal: _signal, log: _log, ...rest } = options;
        const answer = await asker.ask({ op: "trigger", pipelineUuid, options: rest });
        if (answer.error) {
          if (answer.error.trigger) throw new TriggerPipelineError(answer.error.message, (answer.error.run as PipelineRun | null) ?? null);
          throw new Error(answer.error.message);
        }
        return answer.value as PipelineRun;
      },
    };
    const output = await callBlock(fn, call.spec, call.inputs, context, systemClock);
    await recordResult(resultFile, { state: "completed", output: encodeBlockOutput(job.pipelineUuid, job.blockUuid, output) });
    return 0;
  } catch (error) {
    // the stack goes to the log; kiln takes the marked last line as the block run's error
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    const full = mask.mask(error instanceof Error ? error.message : String(error));
    // the result file keeps a multi-line error whole; the marked line cannot
    await recordResult(resultFile, { state: "failed", error: full });
    console.error(`${BLOCK_FAILED_MARK}${full.replace(/\n/g, " ")}`);
    return 1;
  } finally {
    process.off("beforeExit", neverSettled);
    process.off("SIGTERM", abort);
  }
}

/**
 * Makes a project's blocks import this kiln's @kiln/core: given by the process's entry (main.ts
 * from the sources, thin-entry.ts in the bundle, which has no import.meta to find it with).
 */
export type InstallKilnForBlocks = (projectRoot: string) => void;

/**
 * The first line on stdin, read synchronously with Bun's prompt(); undefined where there is no
 * prompt (Node, Deno), and the first line is read like the others. A spare that waits in a
 * blocking read has not started its event loop, and a block run that needs none (a block that
 * awaits no I/O) ends without it: some 1.5 ms of CPU less per block run on a 2-core machine, a
 * sixth of what the process costs. prompt() writes its message and a space before it reads,
 * so the message is a marked line (`took`, which this process ends once the line is in and kiln
 * ignores), and it may read past the line: kiln writes nothing else to a thin process's stdin
 * before the process has written something after its first line (warm-protocol.ts).
 */
function firstLineSync(): string | null | undefined {
  const { Bun, prompt } = globalThis as { Bun?: unknown; prompt?: (message: string) => string | null };
  if (!Bun || typeof prompt !== "function") return undefined;
  const line = prompt(`${WORKER_MARK}took`);
  if (line !== null) say("");
  return line;
}

/** Waits for block runs on stdin and runs them; the exit code is the last one's. */
export async function blockProcess(projectPath: string, installKilnForBlocks: InstallKilnForBlocks): Promise<number> {
  const root = absolutePath(process.cwd(), projectPath);
  // a block's `import "@kiln/core"` is this kiln's. Not loaded here: a block that never imports
  // it (a plain function, a Mage-style block) would pay its parsing at every boot all the same
  installKilnForBlocks(root);
  say(`${WORKER_MARK}ready`);
  let first = firstLineSync();
  // opened after the synchronous read: stdin's stream reads what comes after the first line
  const lines = stdinLines();
  const asker = new Asker(lines);
  let runs = 0;
  for (;;) {
    const line = first !== undefined ? first : await lines.next();
    first = undefined;
    if (line === null) return 0;
    if (line.trim() === "") continue;
    const run = JSON.parse(line) as WarmBlockRun | WorkerReply;
    // an answer that came after its block run ended
    if ("reply" in run) continue;
    // a reused process's block modules (and the project modules they import) start from scratch
    // (block-reset.ts, which loads node:fs, only where a process runs more than one)
    if (runs++ > 0) (await import("../block-reset.ts")).forgetProjectModules(root);
    const code = await runCall(run, asker);
    if (run.boundary === undefined) return code;
    // the next block run starts clean: nothing this one started lives on beside it (after the
    // last one, kiln kills the whole group)
    if (!run.last) (await import("../block-reset.ts")).killLeftovers();
    say(`${run.boundary} ${code}`);
    console.error(`${run.boundary} ${code}`);
    if (run.last) return code;
  }
}
