/**
 * Shards of the triggers, as the tick sees them. Apart from leases.ts so that what the tick needs
 * does not pull in the Redis client (a Worker bundles the tick, never Redis).
 */

/** The shards a replica may work on now, with the fencing token of each. */
export interface ShardAssignment {
  count: number;
  /** shard -> fencing token */
  held: ReadonlyMap<number, number>;
}

/** The lease name of a shard, as recorded in the database. */
export function shardLeaseName(shard: number): string {
  return `schedules-shard-${shard}`;
}
