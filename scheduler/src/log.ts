/** Where the scheduler reports what it did; a console logger by default. */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Lines on stderr with a timestamp and level. */
export const consoleLog: Log = {
  info: (m) => console.error(`${new Date().toISOString()} INFO scheduler: ${m}`),
  warn: (m) => console.error(`${new Date().toISOString()} WARN scheduler: ${m}`),
  error: (m) => console.error(`${new Date().toISOString()} ERROR scheduler: ${m}`),
};

/** A logger that drops everything (tests, benchmarks). */
export const silentLog: Log = { info() {}, warn() {}, error() {} };
