/**
 * Replicas with Redis leases, against a real redis-server: shards split fairly, a dead replica's
 * shards are taken over within a lease period, a stale replica is fenced off at write time, and
 * three schedulers racing over a week create each run exactly once.
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import { LeaseLostError, Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { RedisLeases, shardLeaseName, silentLog } from "@kiln/scheduler";
import { metadata, projectFixture, until, type Fixture } from "../helpers/fixtures.ts";
import { redisAvailable, startRedis, type RedisServer } from "../helpers/redis.ts";
import { HOUR, replica, IN_PROCESS, triggersYaml, utc, type Replica } from "../helpers/scheduler.ts";

const available = redisAvailable();
let redis: RedisServer;
let namespaceSeq = 0;

beforeAll(async () => {
  if (available) redis = await startRedis();
});
afterAll(() => redis?.stop());

function leases(store: Store, replicaId: string, namespace: string, shards = 12, ttlMs = 800) {
  return new RedisLeases({ redisUrl: redis.url, store, replicaId, namespace, shards, ttlMs, log: silentLog });
}

describe.skipIf(!available)("redis leases", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await projectFixture({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([{ uuid: "a", type: "data_loader" }]),
      "data_loaders/a.js": "export default () => 1;\n",
    });
  });
  afterAll(() => fx.cleanup());

  test("three replicas split the shards between them, and take over a dead one's within a lease period", async () => {
    const ns = `kiln-test-${namespaceSeq++}`;
    const [a, b, c] = ["a", "b", "c"].map((id) => leases(fx.store, id, ns));
    try {
      for (let round = 0; round < 3; round++) for (const l of [a!, b!, c!]) await l.refresh();
      const held = [a!, b!, c!].map((l) => [...l.assignment().held.keys()]);
      expect(held.map((h) => h.length)).toEqual([4, 4, 4]);
      expect(new Set(held.flat()).size).toBe(12);

      // c dies without releasing: its keys expire after the TTL and a and b share its shards
      await until(async () => {
        await a!.refresh();
        await b!.refresh();
        const union = new Set([...a!.assignment().held.keys(), ...b!.assignment().held.keys()]);
        return union.size === 12;
      }, "a and b to hold every shard", 10_000);
      expect(a!.assignment().held.size + b!.assignment().held.size).toBe(12);
    } finally {
      for (const l of [a, b, c]) await l?.close();
    }
  });

  test("a replica that lost its lease cannot write with its old token", async () => {
    const ns = `kiln-test-${namespaceSeq++}`;
    const a = leases(fx.store, "stale", ns, 1, 300);
    const b = leases(fx.store, "fresh", ns, 1, 300);
    try {
      const tokenA = (await a.refresh()).held.get(0);
      expect(tokenA).toBeNumber();
      // a stalls past its TTL; b takes the shard with a newer token, recorded in the database
      await until(async () => (await b.refresh()).held.has(0), "b to take shard 0", 5_000);
      const tokenB = b.assignment().held.get(0)!;
      expect(tokenB).toBeGreaterThan(tokenA!);

      const batch = fx.store.batch().requireLease(shardLeaseName(0), tokenA!);
      // a write the scheduler makes under its lease: a drift notification queued with its tick
      batch.insertNotifications("drift", [{ target: "fenced", body: "{}" }]);
      const error = await fx.store.commit(batch).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseLostError);
      const rs = await fx.client.execute("SELECT count(*) AS n FROM notifications WHERE target = 'fenced'");
      expect(Number(rs.rows[0]?.n)).toBe(0);

      await fx.store.commit(fx.store.batch().requireLease(shardLeaseName(0), tokenB));
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("after Redis loses its data (a restart without persistence), the next replica gets the shard at once, with a newer token", async () => {
    const ns = `kiln-test-${namespaceSeq++}`;
    // the database ends up holding a token well above 1 for shard 0 (four grants in a row)
    await fx.client.execute({ sql: "DELETE FROM leases WHERE name = ?", args: [shardLeaseName(0)] });
    const first = leases(fx.store, "before-restart", ns, 1, 300);
    let before = 0;
    try {
      for (let i = 0; i < 4; i++) {
        await first.refresh();
        before = first.assignment().held.get(0) ?? before;
        await first.release();
      }
    } finally {
      await first.close();
    }
    expect(before).toBeGreaterThanOrEqual(4);
    // Redis restarts empty: the token counter is gone (what a restart without --save does)
    const wipe = spawnSync("redis-cli", ["-p", String(redis.port), "EVAL", "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0", "0", `${ns}:*`]);
    expect(wipe.status).toBe(0);
    const next = leases(fx.store, "after-restart", ns, 1, 300);
    try {
      const held = (await next.refresh()).held.get(0);
      expect(held).toBeGreaterThan(before);
      // and it fences: the database records its token as the current one
      await fx.store.commit(fx.store.batch().requireLease(shardLeaseName(0), held!));
    } finally {
      await next.close();
    }
  });
});

describe.skipIf(!available)("three schedulers sharing triggers through Redis", () => {
  test("over a simulated week, every hourly run of 6 triggers is created exactly once and completes", async () => {
    const start = utc(2026, 3, 2, 0, 30);
    const clock = new FakeClock(start);
    const triggers = Array.from({ length: 6 }, (_, i) => ({
      name: `t${i}`,
      schedule_type: "time",
      schedule_interval: "@hourly",
      status: "active",
    }));
    const fx = await projectFixture(
      {
        "kiln.yaml": IN_PROCESS,
        "pipelines/p/metadata.yaml": metadata([{ uuid: "a", type: "data_loader" }]),
        "data_loaders/a.js": "export default (ctx) => ctx.executionDate.toISOString();\n",
        "pipelines/p/triggers.yaml": triggersYaml(triggers),
      },
      clock,
    );
    const ns = `kiln-test-${namespaceSeq++}`;
    const replicas: Replica[] = [];
    try {
      for (const id of ["r1", "r2", "r3"]) {
        const store = await Store.open(await openDatabase(`file:${fx.root}/.kiln/kiln.db`), clock);
        replicas.push(await replica(fx, clock, id, { leases: leases(store, id, ns, 8, 60_000) }));
      }
      for (let hour = 0; hour <= 7 * 24; hour++) {
        await Promise.all(replicas.map((r) => r.scheduler.tick()));
        clock.advance(HOUR);
      }
      // activated at 00:30 on day one: the 00:00 date is not run; 01:00 ... +168 h are
      const expected = 6 * 7 * 24;
      await until(async () => {
        const rs = await fx.client.execute("SELECT count(*) AS n FROM pipeline_runs WHERE status = 'completed'");
        return Number(rs.rows[0]?.n) >= expected;
      }, "every run to complete", 60_000);
      const rs = await fx.client.execute(
        "SELECT count(*) AS n, count(DISTINCT pipeline_schedule_id || ':' || execution_date) AS distinct_dates, sum(status != 'completed') AS open FROM pipeline_runs",
      );
      expect(Number(rs.rows[0]?.n)).toBe(expected);
      expect(Number(rs.rows[0]?.distinct_dates)).toBe(expected);
      expect(Number(rs.rows[0]?.open)).toBe(0);
      const attempts = await fx.client.execute("SELECT max(attempt) AS m, count(*) AS n FROM block_runs");
      expect(Number(attempts.rows[0]?.m)).toBe(1);
      expect(Number(attempts.rows[0]?.n)).toBe(expected);
      // the work was shared: more than one replica created runs' owners
      const owners = await fx.client.execute("SELECT count(DISTINCT owner) AS n FROM pipeline_runs");
      expect(Number(owners.rows[0]?.n)).toBeGreaterThan(1);
    } finally {
      for (const r of replicas) {
        await r.scheduler.stop(0);
        r.close();
      }
      fx.cleanup();
    }
  });
});
