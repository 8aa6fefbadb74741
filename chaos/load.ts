/**
 * The work a chaos run asks for besides its time triggers: a stream of POSTs to the API trigger
 * (each acknowledged run recorded), backfills through the API, and a watch on the @always_on
 * trigger's live runs.
 */
import type { ChaosDb } from "./db.ts";
import type { Replica } from "./processes.ts";
import type { Random } from "./random.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Ack {
  runId: number;
  replica: number;
  at: number;
}

/** POSTs to the API trigger at random replicas, one every [min, max) seconds, each with a 5 s deadline. */
export class ApiLoad {
  readonly acks: Ack[] = [];
  sent = 0;
  refused = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #stopped = false;

  constructor(
    private readonly replicas: Replica[],
    private readonly scheduleId: number,
    private readonly token: string,
    private readonly rng: Random,
    private readonly everySeconds: [number, number],
  ) {}

  async run(): Promise<void> {
    while (!this.#stopped) {
      await sleep(this.rng.between(this.everySeconds[0], this.everySeconds[1]) * 1000);
      if (this.#stopped) break;
      const target = this.rng.pick(this.replicas);
      const p = this.#post(target).finally(() => this.#inFlight.delete(p));
      this.#inFlight.add(p);
    }
  }

  async #post(replica: Replica): Promise<void> {
    this.sent++;
    const n = this.sent;
    try {
      const answer = await fetch(`${replica.url}/api/pipeline_schedules/${this.scheduleId}/pipeline_runs/${this.token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ pipeline_run: { variables: { n } } }),
        signal: AbortSignal.timeout(5_000),
      });
      const body = (await answer.json().catch(() => null)) as { pipeline_run?: { id?: number } } | null;
      if (answer.status === 201 && typeof body?.pipeline_run?.id === "number") {
        this.acks.push({ runId: body.pipeline_run.id, replica: replica.index, at: Date.now() });
      } else this.refused++;
    } catch {
      // replica down, frozen or restarting: not acknowledged, so not owed
      this.refused++;
    }
  }

  /** Stops sending and waits for the requests in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([...this.#inFlight]);
  }
}

/** Creates and starts a backfill of `minutes` minute dates through a replica's API; returns its id and date count. */
export async function startBackfill(replica: Replica, adminKey: string, pipeline: string, name: string, fromIso: string, minutes: number): Promise<{ id: number; dates: number }> {
  const auth = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
  const end = new Date(Date.parse(fromIso) + (minutes - 1) * 60_000).toISOString();
  const created = await fetch(`${replica.url}/api/pipelines/${pipeline}/backfills`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ backfill: { name, start_datetime: fromIso, end_datetime: end, interval_type: "minute", interval_units: 1, max_concurrent_runs: 4 } }),
  });
  const body = (await created.json()) as { backfill?: { id: number; total_run_count?: number } };
  if (created.status !== 201 || !body.backfill) throw new Error(`backfill not created: ${created.status} ${JSON.stringify(body)}`);
  const started = await fetch(`${replica.url}/api/backfills/${body.backfill.id}/start`, { method: "POST", headers: auth, body: "{}" });
  if (started.status >= 300) throw new Error(`backfill ${body.backfill.id} not started: ${started.status} ${await started.text()}`);
  return { id: body.backfill.id, dates: body.backfill.total_run_count ?? minutes };
}

/** Samples how many runs of the @always_on trigger are live (initial or running), every 300 ms. */
export class AlwaysOnWatch {
  maxLive = 0;
  samples = 0;
  /** Moments when more than one run was live, with their ids. */
  readonly doubles: Array<{ at: number; ids: number[] }> = [];
  #stopped = false;

  constructor(
    private readonly db: ChaosDb,
    private readonly scheduleId: number,
  ) {}

  async run(): Promise<void> {
    while (!this.#stopped) {
      const rows = await this.db.tryRows("SELECT id FROM pipeline_runs WHERE pipeline_schedule_id = ? AND status IN ('initial', 'running')", [this.scheduleId]);
      if (rows) {
        this.samples++;
        this.maxLive = Math.max(this.maxLive, rows.length);
        if (rows.length > 1) this.doubles.push({ at: Date.now(), ids: rows.map((r) => Number(r.id)) });
      }
      await sleep(300);
    }
  }

  stop(): void {
    this.#stopped = true;
  }
}
