/** What a Worker tick's log says when it takes a run over: routine hand-over, a dead tick, or another scheduler. */
import { describe, expect, test } from "bun:test";
import { describeTickTakeover } from "../../worker/src/scheduler-object.ts";
import type { TickRecord } from "@kiln/worker";

const ended: TickRecord = { id: "worker-tick-a", state: "ended", startedAt: 1, endedAt: 2, previous: "none" };
const died: TickRecord = { id: "worker-tick-b", state: "running", startedAt: 3, endedAt: null, previous: "ended" };

describe("describeTickTakeover", () => {
  test("a run an ended tick handed on is taken over at info level, saying so", () => {
    expect(describeTickTakeover("worker-tick-a", ended)).toEqual({ level: "info", reason: "an earlier tick, which ended and handed its unfinished runs on" });
    // an older tick's run, carried past the tick before: handed on all the same
    expect(describeTickTakeover("worker-tick-old", died)).toEqual({ level: "info", reason: "an earlier tick, which ended and handed its unfinished runs on" });
  });

  test("a run of the tick that died mid-tick is a warning naming that", () => {
    const note = describeTickTakeover("worker-tick-b", died);
    expect(note.level).toBe("warn");
    expect(note.reason).toContain("never recorded its end");
  });

  test("a run of a scheduler that is no tick (kiln start on the same database) is a warning", () => {
    const note = describeTickTakeover("scheduler-123", ended);
    expect(note.level).toBe("warn");
    expect(note.reason).toContain("not this Worker's scheduler object");
  });
});
