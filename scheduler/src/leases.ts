/**
 * Sharing the work between scheduler replicas with Redis leases. Triggers are split into a fixed
 * number of shards (by id); each replica holds leases on a fair share of them (Redis keys with a
 * TTL, renewed every tick) and evaluates only their triggers. Getting a lease also yields a
 * fencing token (an INCR), recorded in the database; every write made for a shard carries that
 * token and is refused once a newer holder has recorded its own. So a replica that stalls past
 * its TTL and wakes up cannot create runs over its successor. Correctness never rests on Redis:
 * run creation stays exactly-once through the database's unique key with or without it.
 */
import { lostRaces } from "@kiln/core/engine";
import { currentLeaseToken, recordLease, type Store } from "@kiln/core/store";
import Redis from "ioredis";
import type { Log } from "./log.ts";
import { shardLeaseName, type ShardAssignment } from "./shards.ts";
import { messageOf } from "@kiln/core";

export { shardLeaseName, type ShardAssignment } from "./shards.ts";

export interface LeaseOptions {
  redisUrl: string;
  store: Store;
  replicaId: string;
  /** Keys are prefixed with this, so projects sharing a Redis stay apart. */
  namespace: string;
  shards?: number;
  ttlMs?: number;
  log: Log;
}

// renew or release only a lease we still hold: compare and act in one step
const RENEW = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`;
// a token counter behind the database's token (Redis restarted without its data) jumps past it
const CATCH_UP = `local c = tonumber(redis.call("GET", KEYS[1]) or "0") if c < tonumber(ARGV[1]) then redis.call("SET", KEYS[1], ARGV[1]) end return redis.call("INCR", KEYS[1])`;

export class RedisLeases {
  readonly shards: number;
  readonly ttlMs: number;
  readonly #redis: Redis;
  readonly #held = new Map<number, number>();
  readonly #options: LeaseOptions;

  constructor(options: LeaseOptions) {
    this.#options = options;
    this.shards = options.shards ?? 16;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.#redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: false });
    this.#redis.on("error", (error: Error) => options.log.warn(`redis: ${error.message}`));
  }

  #key(suffix: string): string {
    return `${this.#options.namespace}:${suffix}`;
  }

  /** The shards held right now. */
  assignment(): ShardAssignment {
    return { count: this.shards, held: new Map(this.#held) };
  }

  /**
   * Renews held leases, drops lost ones, and takes or gives back shards towards a fair share
   * (shards ÷ live replicas). Call once a tick; a failure leaves the replica holding nothing.
   */
  async refresh(): Promise<ShardAssignment> {
    const redis = this.#redis;
    const id = this.#options.replicaId;
    const now = Date.now();
    try {
      const replicas = this.#key("replicas");
      await redis.zadd(replicas, now + this.ttlMs, id);
      await redis.zremrangebyscore(replicas, "-inf", now);
      const live = Math.max(1, await redis.zcard(replicas));
      const fair = Math.ceil(this.shards / live);

      for (const shard of [...this.#held.keys()]) {
        const renewed = await redis.eval(RENEW, 1, this.#key(`shard:${shard}`), id, String(this.ttlMs));
        if (renewed !== 1) {
          this.#held.delete(shard);
          // taken by another replica (this one was slow to renew): it evaluates the shard now
          lostRaces.lost("lease");
          this.#options.log.debug?.(`lost the lease on shard ${shard} to another replica`);
        }
      }
      // give back what is over the fair share, so a new replica gets work
      for (const shard of [...this.#held.keys()].slice(fair)) {
        await redis.eval(RELEASE, 1, this.#key(`shard:${shard}`), id);
        this.#held.delete(shard);
      }
      for (let shard = 0; shard < this.shards && this.#held.size < fair; shard++) {
        if (this.#held.has(shard)) continue;
        const got = await redis.set(this.#key(`shard:${shard}`), id, "PX", this.ttlMs, "NX");
        if (got !== "OK") continue;
        const client = this.#options.store.client;
        const name = shardLeaseName(shard);
        let token = await redis.incr(this.#key(`token:${shard}`));
        // the token only fences if the database knows it before this replica writes with it
        let recorded = await recordLease(client, name, id, token, now + this.ttlMs);
        if (!recorded) {
          // the database holds a token at least as new: a holder before this one recorded it, or
          // Redis lost its counters (a restart without persistence starts them at 1 again, under
          // every recorded token, and the shard would stay unheld, none of its triggers evaluated,
          // until failed grants counted it back up). This replica holds the key now, so it is the
          // newest holder: its counter jumps past the recorded token, once
          const current = await currentLeaseToken(client, name);
          token = Number(await redis.eval(CATCH_UP, 1, this.#key(`token:${shard}`), String(current)));
          recorded = await recordLease(client, name, id, token, now + this.ttlMs);
        }
        if (recorded) {
          this.#held.set(shard, token);
        } else {
          lostRaces.lost("lease");
          await redis.eval(RELEASE, 1, this.#key(`shard:${shard}`), id);
        }
      }
    } catch (error) {
      this.#held.clear();
      this.#options.log.warn(`leases unavailable, evaluating no triggers this tick: ${messageOf(error)}`);
    }
    return this.assignment();
  }

  /** Gives every lease back (a clean shutdown), so others take the shards at once. */
  async release(): Promise<void> {
    const id = this.#options.replicaId;
    try {
      for (const shard of this.#held.keys()) await this.#redis.eval(RELEASE, 1, this.#key(`shard:${shard}`), id);
      await this.#redis.zrem(this.#key("replicas"), id);
    } catch {
      // the TTLs free them anyway
    }
    this.#held.clear();
  }

  /** Closes the Redis connection. */
  async close(): Promise<void> {
    await this.release();
    this.#redis.disconnect();
  }
}
