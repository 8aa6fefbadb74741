/**
 * The CLI's errors, and how a command's outcome becomes the process's exit code (for main.ts and
 * the bundled thin block process alike; here, because `kiln --version` loads this module anyway):
 * the command's code; 2 and one line for a usage error; 70 and the stack for anything else; and
 * 70 when the event loop empties while the command still waits on a promise that can no longer
 * settle (an in-process block that never returns), since exiting 0 would report success.
 */

/** A mistake in what the user asked for: printed as one line, exit code 2, nothing written. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Exits with `work`'s code once it settles, and fails a process whose work can never settle. */
export function exitWhenDone(work: Promise<number>): void {
  process.once("beforeExit", () => {
    process.stderr.write("kiln: the command stopped before finishing: it was waiting on a promise that never settled\n");
    process.exit(70);
  });
  work.then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof UsageError) {
        process.stderr.write(`kiln: ${error.message}\n`);
        process.exit(2);
      }
      process.stderr.write(`kiln: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(70);
    },
  );
}
