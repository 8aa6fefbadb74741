/**
 * Executor slots: how many block runs execute now per executor type, across every run of one
 * engine, against concurrency_config.executor_limits. A block run takes a slot when it is
 * claimed (queued -> running) or re-attached, and gives it back when it stops executing; a run
 * whose queued block runs found no room is woken when a limited type frees a slot.
 */
export class ExecutorSlots {
  readonly #active = new Map<string, number>();
  /** Types any project given to the engine limits: only their releases can unblock a waiting run. */
  readonly #limited = new Set<string>();

  /** Notes a project's executor_limits (each project the engine is given, so none is missed on release). */
  noteLimits(limits: Readonly<Record<string, number>> | undefined): void {
    for (const type of Object.keys(limits ?? {})) this.#limited.add(type);
  }

  /** Whether one more block run of `type` fits under `limit` (none: always). */
  hasRoom(type: string, limit: number | undefined): boolean {
    return limit === undefined || (this.#active.get(type) ?? 0) < limit;
  }

  /** Takes a slot of `type`. */
  take(type: string): void {
    this.#active.set(type, (this.#active.get(type) ?? 0) + 1);
  }

  /** Gives a slot of `type` back; true if the type is limited, so runs waiting for room should look again. */
  release(type: string): boolean {
    this.#active.set(type, Math.max(0, (this.#active.get(type) ?? 1) - 1));
    return this.#limited.has(type);
  }

  /** Block runs of `type` holding a slot now. */
  of(type: string): number {
    return this.#active.get(type) ?? 0;
  }

  /** Block runs holding a slot now, over every type. */
  get total(): number {
    let total = 0;
    for (const count of this.#active.values()) total += count;
    return total;
  }
}
