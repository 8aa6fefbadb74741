/**
 * Time, injectable: the engine and scheduler read the time and wait through a Clock, so tests
 * move time forward instead of sleeping.
 */
export interface Clock {
  /** UTC epoch milliseconds. */
  now(): number;
  /**
   * Calls `fn` after `ms` milliseconds of this clock's time; returns a function that cancels it.
   * A `background` timer does not keep the process alive on its own (housekeeping only).
   */
  setTimer(ms: number, fn: () => void, options?: { background?: boolean }): () => void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn, options) {
    const t = setTimeout(fn, Math.max(0, ms));
    // Node, Bun and Deno timers can be unref'd; a Worker's timer id is a number and cannot
    if (options?.background) (t as { unref?: () => void }).unref?.();
    return () => clearTimeout(t);
  },
};

/** Resolves after `ms` of the given clock's time. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that only moves when told to; timers fire in time order as it passes them. */
export class FakeClock implements Clock {
  #now: number;
  #timers: Timer[] = [];
  #seq = 0;
  #waiters: Array<() => void> = [];

  constructor(start: number | Date = Date.UTC(2026, 0, 1)) {
    this.#now = typeof start === "number" ? start : start.getTime();
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(timer);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  /** Number of timers waiting to fire. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** When the earliest pending timer fires, or null. */
  nextTimerAt(): number | null {
    let next: number | null = null;
    for (const t of this.#timers) if (next === null || t.at < next) next = t.at;
    return next;
  }

  /** Resolves once at least `count` timers are pending (tests wait here for the engine to park). */
  async untilTimers(count = 1): Promise<void> {
    while (this.#timers.length < count) await new Promise<void>((r) => this.#waiters.push(r));
  }

  /** Moves time forward by `ms`, firing every timer that comes due, in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = target;
  }
}
