/**
 * Bundled into the benchmark's Worker (never into kiln's own): wraps the Worker and its scheduler
 * object so that every invocation (a fetch, a cron firing, a wake of the object, its alarm)
 * counts its own subrequests, as Cloudflare counts them per invocation: each `fetch()` (the
 * libSQL client's HTTP requests to sqld), each D1 query (a statement's `all()`, a `batch()`,
 * with its statement count) and each call to the Durable Object. The invocation a call belongs
 * to is found through AsyncLocalStorage (workerd's, under nodejs_compat), which follows every
 * await and timer. The entry imports this module before kiln's, so the fetch it wraps is the
 * one kiln's modules find. `GET /__bench/invocations` answers the records; at the end of each
 * invocation a notice goes to the benchmark (KILN_BENCH_NOTIFY), through the unwrapped fetch:
 * it is the benchmark's, not kiln's, and is not counted.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { KilnWorker, WorkerEnv } from "@kiln/worker";

/** One invocation's subrequests. */
export interface InvocationRecord {
  seq: number;
  kind: "fetch" | "scheduled" | "object-fetch" | "alarm";
  path: string;
  startedAt: number;
  endedAt: number | null;
  /** fetch() calls, by host. */
  fetches: Record<string, number>;
  /** D1 round trips: one per statement's all() and one per batch(). */
  d1Calls: number;
  /** Statements sent to D1 (a batch counts each of its statements). */
  d1Statements: number;
  /** Calls to the scheduler Durable Object (the wake). */
  objectCalls: number;
  /** The start of each D1 statement, in order (kept when the Worker's KILN_BENCH_TRACE is set). */
  statements?: string[];
}

const context = new AsyncLocalStorage<InvocationRecord>();
const records: InvocationRecord[] = [];
/** Calls made outside any invocation: none are expected; the benchmark fails if there are. */
let outside = 0;
let seq = 0;

const unwrappedFetch = globalThis.fetch.bind(globalThis);

function current(): InvocationRecord | null {
  const record = context.getStore();
  if (!record) outside++;
  return record ?? null;
}

globalThis.fetch = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
  const record = current();
  if (record) {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const host = new URL(url).host;
    record.fetches[host] = (record.fetches[host] ?? 0) + 1;
  }
  return unwrappedFetch(input, init);
}) as typeof fetch;

interface Statement {
  bind(...values: unknown[]): Statement;
  all(): Promise<unknown>;
}
interface D1 {
  prepare(sql: string): Statement;
  batch(statements: Statement[]): Promise<unknown[]>;
}

/** A D1 statement that counts its round trip; `inner` is what D1's batch() is given. */
class CountedStatement implements Statement {
  constructor(
    readonly inner: Statement,
    readonly sql: string,
  ) {}
  bind(...values: unknown[]): Statement {
    return new CountedStatement(this.inner.bind(...values), this.sql);
  }
  all(): Promise<unknown> {
    const record = current();
    if (record) {
      record.d1Calls++;
      record.d1Statements++;
      record.statements?.push(this.sql.slice(0, 80));
    }
    return this.inner.all();
  }
}

function countedD1(db: D1): D1 {
  return {
    prepare: (sql) => new CountedStatement(db.prepare(sql), sql),
    batch: (statements) => {
      const record = current();
      if (record) {
        record.d1Calls++;
        record.d1Statements += statements.length;
        record.statements?.push(`batch of ${statements.length}: ${statements.map((s) => (s instanceof CountedStatement ? s.sql.slice(0, 40) : "?")).join(" | ")}`);
      }
      return db.batch(statements.map((s) => (s instanceof CountedStatement ? s.inner : s)));
    },
  };
}

interface Namespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(input: string, init?: RequestInit): Promise<Response> };
}

function countedNamespace(namespace: Namespace): Namespace {
  return {
    idFromName: (name) => namespace.idFromName(name),
    get: (id) => {
      const stub = namespace.get(id);
      return {
        fetch: (input, init) => {
          const record = current();
          if (record) record.objectCalls++;
          return stub.fetch(input, init);
        },
      };
    },
  };
}

/** The env kiln sees: the same, with DB and KILN_SCHEDULER counting their calls. */
function counted(env: WorkerEnv): WorkerEnv {
  const wrapped: WorkerEnv = { ...env };
  if (env.DB) wrapped.DB = countedD1(env.DB as unknown as D1) as unknown as WorkerEnv["DB"];
  if (env.KILN_SCHEDULER) wrapped.KILN_SCHEDULER = countedNamespace(env.KILN_SCHEDULER);
  return wrapped;
}

/** Runs one invocation inside its own record; the benchmark hears when it ends. */
async function invocation<T>(kind: InvocationRecord["kind"], path: string, env: WorkerEnv, run: () => Promise<T>): Promise<T> {
  const record: InvocationRecord = { seq: ++seq, kind, path, startedAt: Date.now(), endedAt: null, fetches: {}, d1Calls: 0, d1Statements: 0, objectCalls: 0 };
  if (env.KILN_BENCH_TRACE) record.statements = [];
  records.push(record);
  try {
    return await context.run(record, run);
  } finally {
    record.endedAt = Date.now();
    const notify = env.KILN_BENCH_NOTIFY;
    if (typeof notify === "string" && notify !== "") {
      // outside the record: the benchmark's own request, not kiln's
      await unwrappedFetch(notify, { method: "POST", body: JSON.stringify({ seq: record.seq, kind }) }).then((r) => r.body?.cancel());
    }
  }
}

/** The benchmark Worker: kiln's, counted, plus GET /__bench/invocations. */
export function instrumentedWorker(worker: KilnWorker): KilnWorker {
  return {
    fetch(request, env, ctx) {
      const path = new URL(request.url).pathname;
      if (path === "/__bench/invocations") return Promise.resolve(Response.json({ records, outside }));
      return invocation("fetch", path, env, () => worker.fetch(request, counted(env), ctx));
    },
    scheduled(event, env, ctx) {
      return invocation("scheduled", event.cron, env, () => worker.scheduled(event, counted(env), ctx));
    },
  };
}

interface SchedulerObject {
  fetch(request: Request): Promise<Response>;
  alarm(): Promise<void>;
}

/** The benchmark's scheduler object: kiln's class, its fetch and alarm counted. */
export function instrumentedObject<S, C extends new (state: S, env: WorkerEnv) => SchedulerObject>(Base: C): new (state: S, env: WorkerEnv) => SchedulerObject {
  return class extends (Base as new (state: S, env: WorkerEnv) => SchedulerObject) {
    readonly #env: WorkerEnv;
    constructor(state: S, env: WorkerEnv) {
      super(state, counted(env));
      this.#env = env;
    }
    override fetch(request: Request): Promise<Response> {
      return invocation("object-fetch", new URL(request.url).pathname, this.#env, () => super.fetch(request));
    }
    override alarm(): Promise<void> {
      return invocation("alarm", "", this.#env, () => super.alarm());
    }
  };
}
