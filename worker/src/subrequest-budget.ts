/**
 * A tick's subrequest budget. Cloudflare limits the subrequests of one invocation (50 on the Free
 * plan, 10,000 on Paid; D1 queries 50 / 1,000), and the scheduler object's alarm is one
 * invocation: a tick that starts too many block runs fails mid-way. So the tick counts the
 * subrequests it makes (each D1 statement, each fetch of the libSQL client) and hands out no
 * block run that could take it past KILN_SUBREQUEST_BUDGET; it then ends as at its deadline, and
 * the next invocation goes on with the runs it left.
 */
import type { D1Database, D1PreparedStatement, D1Result } from "./d1-client.ts";
import { WorkerStartError, type WorkerEnv } from "./env.ts";

/** The budget when KILN_SUBREQUEST_BUDGET is unset: below the Free plan's 50, with room for what is not counted. */
export const DEFAULT_SUBREQUEST_BUDGET = 40;

/** Subrequests of one no-op block run in the Worker, as bench/worker.ts measured them (about 6). */
export const BLOCK_RUN_SUBREQUESTS = 6;

/** Subrequests kept for the tick's end: handing its runs on, flushing logs, reading the next due instant. */
export const TICK_END_SUBREQUESTS = 4;

/** The budget from KILN_SUBREQUEST_BUDGET (a positive integer), or the default when unset. */
export function subrequestBudget(env: WorkerEnv): number {
  const text = env.KILN_SUBREQUEST_BUDGET;
  if (typeof text !== "string" || text === "") return DEFAULT_SUBREQUEST_BUDGET;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new WorkerStartError(`KILN_SUBREQUEST_BUDGET: expected a positive whole number of subrequests per tick, got ${JSON.stringify(text)}`);
  return value;
}

/** A D1 statement whose round trip is counted; `inner` is what D1's batch() is given. */
class CountedStatement implements D1PreparedStatement {
  constructor(
    readonly inner: D1PreparedStatement,
    readonly count: () => void,
  ) {}
  bind(...values: unknown[]): D1PreparedStatement {
    return new CountedStatement(this.inner.bind(...values), this.count);
  }
  all(): Promise<D1Result> {
    this.count();
    return this.inner.all();
  }
}

/**
 * One tick's count and budget. The tick's first block run is always handed out, whatever the
 * count, so a budget below a tick's fixed cost still lets runs go forward (one block run a tick).
 */
export class TickBudget {
  #used = 0;
  #launched = 0;
  #usedAtFirstLaunch = 0;
  #refused = false;
  #tooSmall = false;

  constructor(readonly limit: number) {}

  /** Subrequests counted so far. */
  get used(): number {
    return this.#used;
  }

  /** Whether the tick's first block run was handed out though it could not fit (the budget is below a tick's fixed cost plus one block run). */
  get tooSmall(): boolean {
    return this.#tooSmall;
  }

  /** Whether a block run was left queued because of the budget. */
  get refused(): boolean {
    return this.#refused;
  }

  /**
   * The D1 binding, counted: a statement's all() as one, a batch() as its statements (one
   * subrequest, but D1's own per-invocation limit may count each statement as a query).
   */
  d1(db: D1Database): D1Database {
    const count = () => void this.#used++;
    return {
      prepare: (sql) => new CountedStatement(db.prepare(sql), count),
      batch: (statements) => {
        this.#used += statements.length;
        return db.batch(statements.map((s) => (s instanceof CountedStatement ? s.inner : s)));
      },
    };
  }

  /** A fetch that counts each request (the libSQL client's HTTP requests to its server). */
  readonly fetch = (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    this.#used++;
    return fetch(input, init);
  };

  /**
   * The cost to expect of one block run: the measured no-op cost, or more when the block runs of
   * this tick have cost more on average.
   */
  #perBlockRun(): number {
    if (this.#launched === 0) return BLOCK_RUN_SUBREQUESTS;
    return Math.max(BLOCK_RUN_SUBREQUESTS, Math.ceil((this.#used - this.#usedAtFirstLaunch) / this.#launched));
  }

  /**
   * Whether one more block run may be handed out now, `executing` being those handed out and
   * not ended (each may still cost a whole block run): the tick's end must fit after them all.
   */
  mayLaunch(executing: number): boolean {
    if (this.#launched === 0) {
      if (this.#used + BLOCK_RUN_SUBREQUESTS + TICK_END_SUBREQUESTS > this.limit) this.#tooSmall = true;
      this.#usedAtFirstLaunch = this.#used;
      this.#launched = 1;
      return true;
    }
    if (this.#used + (executing + 1) * this.#perBlockRun() + TICK_END_SUBREQUESTS > this.limit) {
      this.#refused = true;
      return false;
    }
    this.#launched++;
    return true;
  }
}
