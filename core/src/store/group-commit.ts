/**
 * Group commit: batches submitted while a commit is in flight are merged into the next one, so
 * many runs advancing at once share a transaction (and its fsync) instead of queueing one
 * transaction each. A batch whose guard fails is taken out and rejected on its own; the others
 * are retried without it, so one lost race never costs another run its write.
 */
import type { ResultSet } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";
import { IllegalTransitionError } from "../state-machine.ts";
import type { WriteBatch } from "./write-batch.ts";

interface Pending {
  batch: WriteBatch;
  resolve: (results: ResultSet[]) => void;
  reject: (error: unknown) => void;
}

function statementIndexOf(error: unknown): number | null {
  const index = (error as { statementIndex?: unknown } | null)?.statementIndex;
  return typeof index === "number" ? index : null;
}

export class GroupCommitter {
  #queue: Pending[] = [];
  #flushing = false;

  constructor(private readonly client: SqlClient) {}

  /** Commits the batch (with whatever else is waiting); resolves with its statements' results. */
  commit(batch: WriteBatch): Promise<ResultSet[]> {
    if (batch.size === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#queue.push({ batch, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        // let the current burst of events queue their batches before the first commit
        queueMicrotask(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#commitGroup(this.#queue.splice(0));
    } finally {
      this.#flushing = false;
    }
  }

  async #commitGroup(group: Pending[]): Promise<void> {
    let pending = group;
    // losers are explained after the others commit, so the message says what won
    const losers: Array<{ p: Pending; index: number; error: unknown }> = [];
    try {
      await this.#commitAll(pending, losers);
    } finally {
      for (const loser of losers) loser.p.reject(await this.#explain(loser.p.batch, loser.index, loser.error));
    }
  }

  async #commitAll(group: Pending[], losers: Array<{ p: Pending; index: number; error: unknown }>): Promise<void> {
    let pending = group;
    while (pending.length > 0) {
      const statements = pending.flatMap((p) => p.batch.statements);
      try {
        const results = await this.client.batch(statements, "write");
        let offset = 0;
        for (const p of pending) {
          p.resolve(results.slice(offset, offset + p.batch.size));
          offset += p.batch.size;
        }
        return;
      } catch (error) {
        const index = statementIndexOf(error);
        if (index === null) {
          for (const p of pending) p.reject(error);
          return;
        }
        let offset = 0;
        const culprit = pending.find((p) => {
          const inside = index < offset + p.batch.size;
          if (!inside) offset += p.batch.size;
          return inside;
        });
        if (!culprit) {
          for (const p of pending) p.reject(error);
          return;
        }
        losers.push({ p: culprit, index: index - offset, error });
        pending = pending.filter((p) => p !== culprit);
      }
    }
  }

  /** Turns a failed guard into an IllegalTransitionError that says what the record is now. */
  async #explain(batch: WriteBatch, index: number, error: unknown): Promise<unknown> {
    const guard = batch.guards.find((g) => g.index === index);
    if (!guard) return error;
    const rs = await this.client.execute(guard.lookup);
    const row = rs.rows[0];
    const actual = row ? String(row.status) : "missing";
    if (guard.explain) return guard.explain(actual, row);
    return new IllegalTransitionError(guard.entity, guard.subject, guard.from, guard.to, actual);
  }
}
