/** Where the scheduler reports what it did; a console logger by default. */
export interface Log {
  /** Normal contention between replicas (a race lost to another), and other detail. */
  debug?(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Debug lines are printed only with KILN_LOG_LEVEL=debug (read where there is a process environment). */
const DEBUG = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_LOG_LEVEL === "debug";

/** Lines on stderr with a timestamp and level. */
export const consoleLog: Log = {
  debug: (m) => {
    if (DEBUG) console.error(`${new Date().toISOString()} DEBUG scheduler: ${m}`);
  },
  info: (m) => console.error(`${new Date().toISOString()} INFO scheduler: ${m}`),
  warn: (m) => console.error(`${new Date().toISOString()} WARN scheduler: ${m}`),
  error: (m) => console.error(`${new Date().toISOString()} ERROR scheduler: ${m}`),
};

/** A logger that drops everything (tests, benchmarks). */
export const silentLog: Log = { info() {}, warn() {}, error() {} };
