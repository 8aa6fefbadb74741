/**
 * Triggers as code: triggers.yaml synced into pipeline_schedules on every tick, activation never
 * reaching back before it was switched on (unless create_initial_pipeline_run), a due date turned
 * into exactly one run that the same tick starts, and edits (removal, a new interval, a broken
 * cron) taking effect on the next tick without one bad trigger stopping the others.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import {
  blockRunRows,
  gatedProject,
  HOUR,
  iso,
  MINUTE,
  runs,
  schedule,
  schedulerFixture,
  stamp,
  triggersYaml,
  utc,
  waitForEngines,
  waitForRun,
} from "../helpers/scheduler.ts";

const ACTIVATED = utc(2026, 3, 2, 10, 15);
const hourly = { name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active" };

describe("an @hourly trigger in triggers.yaml", () => {
  test("is synced as a code trigger; activation at 10:15 creates nothing; 11:00 creates one run, started by that tick, which completes", async () => {
    const clock = new FakeClock(ACTIVATED);
    const fx = await schedulerFixture(gatedProject("tac-1", [hourly]), clock);
    try {
      const first = await fx.scheduler.tick();
      expect(first.sync.created).toBe(1);
      const row = await schedule(fx.client, "hourly");
      expect(row.source).toBe("code");
      expect(row.status).toBe("active");
      expect(row.schedule_interval).toBe("@hourly");
      expect(row.last_enabled_at).toBe(ACTIVATED);
      expect(row.invalid_reason).toBeNull();
      // nothing for 10:00 (before activation) nor anything earlier
      expect(first.runs.created).toBe(0);
      expect(await runs(fx.client)).toEqual([]);
      expect(iso(row.next_run_at)).toBe(iso(utc(2026, 3, 2, 11)));

      // ticks before the hour change nothing
      clock.advance(30 * MINUTE);
      expect((await fx.scheduler.tick()).runs.created).toBe(0);
      expect(await runs(fx.client)).toEqual([]);

      clock.advance(utc(2026, 3, 2, 11) - clock.now());
      const due = await fx.scheduler.tick();
      expect(due.sync).toEqual({ created: 0, updated: 0, deactivated: 0 });
      expect(due.runs.created).toBe(1);
      expect(due.started).toBe(1);
      const created = await runs(fx.client);
      expect(created.length).toBe(1);
      const run = created[0]!;
      expect(iso(run.execution_date)).toBe(iso(utc(2026, 3, 2, 11)));
      expect(run.pipeline_schedule_id).toBe(row.id);
      expect(run.execution_partition).toBe(`${row.id}/20260302T110000`);
      expect(run.execution_partition).toBe(`${row.id}/${stamp(utc(2026, 3, 2, 11))}`);
      const done = await waitForRun(fx.client, run.id);
      expect(done.status).toBe("completed");
      // started by that tick (the fake clock has not moved since), by this scheduler
      expect(done.started_at).toBe(utc(2026, 3, 2, 11));
      expect(done.owner).toBe(fx.scheduler.id);
      expect((await blockRunRows(fx.client)).map((b) => [b.block_uuid, b.status, b.attempt])).toEqual([["work", "completed", 1]]);
      expect((await schedule(fx.client, "hourly")).last_execution_date).toBe(utc(2026, 3, 2, 11));
      expect(iso((await schedule(fx.client, "hourly")).next_run_at)).toBe(iso(utc(2026, 3, 2, 12)));

      // another tick in the same hour does not repeat it
      clock.advance(10 * MINUTE);
      expect((await fx.scheduler.tick()).runs.created).toBe(0);
      expect((await runs(fx.client)).length).toBe(1);
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("with create_initial_pipeline_run the 10:00 run is created at activation (and nothing older)", async () => {
    const clock = new FakeClock(ACTIVATED);
    const fx = await schedulerFixture(gatedProject("tac-2", [{ ...hourly, settings: { create_initial_pipeline_run: true } }]), clock);
    try {
      const report = await fx.scheduler.tick();
      expect(report.runs.created).toBe(1);
      expect(report.started).toBe(1);
      const created = await runs(fx.client);
      expect(created.map((r) => iso(r.execution_date))).toEqual([iso(utc(2026, 3, 2, 10))]);
      await waitForRun(fx.client, created[0]!.id);
      // and 11:00 comes on time, once
      clock.advance(utc(2026, 3, 2, 11) - clock.now());
      expect((await fx.scheduler.tick()).runs.created).toBe(1);
      clock.advance(HOUR / 2);
      await fx.scheduler.tick();
      expect((await runs(fx.client)).map((r) => iso(r.execution_date))).toEqual([iso(utc(2026, 3, 2, 10)), iso(utc(2026, 3, 2, 11))]);
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("removing the trigger from triggers.yaml makes it inactive: no more runs", async () => {
    const clock = new FakeClock(ACTIVATED);
    const fx = await schedulerFixture(gatedProject("tac-3", [hourly]), clock);
    try {
      await fx.scheduler.tick();
      await fx.edit({ "pipelines/p/triggers.yaml": "triggers: []\n" });
      const report = await fx.scheduler.tick();
      expect(report.sync.deactivated).toBe(1);
      expect((await schedule(fx.client, "hourly")).status).toBe("inactive");
      clock.advance(utc(2026, 3, 2, 13) - clock.now());
      expect((await fx.scheduler.tick()).runs.created).toBe(0);
      expect(await runs(fx.client)).toEqual([]);

      // deleting the whole file does the same to a trigger that came back
      await fx.edit({ "pipelines/p/triggers.yaml": triggersYaml([hourly]) });
      await fx.scheduler.tick();
      const back = await schedule(fx.client, "hourly");
      expect(back.status).toBe("active");
      // switched on again at 13:00: last_enabled_at moves, so the hours it was off are not made up
      expect(back.last_enabled_at).toBe(utc(2026, 3, 2, 13));
      await fx.edit({ "pipelines/p/triggers.yaml": null });
      expect((await fx.scheduler.tick()).sync.deactivated).toBe(1);
      expect((await schedule(fx.client, "hourly")).status).toBe("inactive");
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("changing the interval re-evaluates the trigger at once", async () => {
    const clock = new FakeClock(ACTIVATED);
    const fx = await schedulerFixture(gatedProject("tac-4", [hourly]), clock);
    try {
      await fx.scheduler.tick();
      expect(iso((await schedule(fx.client, "hourly")).next_run_at)).toBe(iso(utc(2026, 3, 2, 11)));
      // every 30 minutes: the next date is 10:30, not the 11:00 worked out for @hourly
      await fx.edit({ "pipelines/p/triggers.yaml": triggersYaml([{ ...hourly, schedule_interval: "*/30 * * * *" }]) });
      const report = await fx.scheduler.tick();
      expect(report.sync.updated).toBe(1);
      const row = await schedule(fx.client, "hourly");
      expect(row.schedule_interval).toBe("*/30 * * * *");
      expect(iso(row.next_run_at)).toBe(iso(utc(2026, 3, 2, 10, 30)));
      clock.advance(15 * MINUTE);
      expect((await fx.scheduler.tick()).runs.created).toBe(1);
      expect((await runs(fx.client)).map((r) => iso(r.execution_date))).toEqual([iso(utc(2026, 3, 2, 10, 30))]);

      // and to @daily: the next date is tomorrow's midnight
      await fx.edit({ "pipelines/p/triggers.yaml": triggersYaml([{ ...hourly, schedule_interval: "@daily" }]) });
      await fx.scheduler.tick();
      expect(iso((await schedule(fx.client, "hourly")).next_run_at)).toBe(iso(utc(2026, 3, 3)));
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("an invalid cron marks that trigger invalid_reason and another valid trigger still runs in the same tick", async () => {
    const clock = new FakeClock(ACTIVATED);
    const bad = { name: "bad", schedule_type: "time", schedule_interval: "99 * * * *", status: "active" };
    const fx = await schedulerFixture(gatedProject("tac-5", [bad, hourly]), clock);
    try {
      const first = await fx.scheduler.tick();
      expect(first.sync.created).toBe(2);
      expect(first.runs.invalid).toBe(1);
      const badRow = await schedule(fx.client, "bad");
      expect(badRow.invalid_reason).toContain("99 * * * *");
      expect(badRow.next_run_at).toBeNull();
      expect((await schedule(fx.client, "hourly")).invalid_reason).toBeNull();

      clock.advance(utc(2026, 3, 2, 11) - clock.now());
      const due = await fx.scheduler.tick();
      expect(due.runs.created).toBe(1);
      expect(due.started).toBe(1);
      const created = await runs(fx.client);
      expect(created.length).toBe(1);
      expect(created[0]!.pipeline_schedule_id).toBe((await schedule(fx.client, "hourly")).id);
      await waitForRun(fx.client, created[0]!.id);

      // fixing the cron clears the reason and schedules it
      await fx.edit({ "pipelines/p/triggers.yaml": triggersYaml([{ ...bad, schedule_interval: "30 * * * *" }, hourly]) });
      await fx.scheduler.tick();
      const fixed = await schedule(fx.client, "bad");
      expect(fixed.invalid_reason).toBeNull();
      expect(iso(fixed.next_run_at)).toBe(iso(utc(2026, 3, 2, 11, 30)));
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("a broken trigger whose first evaluation fails in the same tick as a valid one does not stop it (both due at once)", async () => {
    const clock = new FakeClock(ACTIVATED);
    const bad = { name: "bad", schedule_type: "time", schedule_interval: "99 * * * *", status: "active", settings: { create_initial_pipeline_run: true } };
    const good = { ...hourly, settings: { create_initial_pipeline_run: true } };
    const fx = await schedulerFixture(gatedProject("tac-6", [bad, good]), clock);
    try {
      const report = await fx.scheduler.tick();
      expect(report.runs.invalid).toBe(1);
      expect(report.runs.created).toBe(1);
      expect(report.started).toBe(1);
      const created = await runs(fx.client);
      expect(created.map((r) => iso(r.execution_date))).toEqual([iso(utc(2026, 3, 2, 10))]);
      await waitForRun(fx.client, created[0]!.id);
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });
});

describe("an api trigger in triggers.yaml", () => {
  test("gets a token when the file has none, keeps it on later syncs, and takes the file's when one is set", async () => {
    const clock = new FakeClock(ACTIVATED);
    const api = { name: "on_demand", schedule_type: "api", status: "active" };
    const fx = await schedulerFixture(gatedProject("tac-token", [api]), clock);
    try {
      await fx.scheduler.tick();
      // the token is sealed: the row holds no plaintext, an editor's view decrypts it
      const tokenOf = async () => {
        const row = await schedule(fx.client, "on_demand");
        expect(row.token).toBeNull();
        expect(String(row.token_sealed)).toStartWith("v1:");
        return fx.store.revealTriggerToken(Number(row.id));
      };
      const token = await tokenOf();
      expect(token).toMatch(/^[0-9a-f]{32}$/);
      clock.advance(60_000);
      await fx.edit({ "pipelines/p/triggers.yaml": triggersYaml([{ ...api, variables: { a: 1 } }]) });
      expect((await fx.scheduler.tick()).sync.updated).toBe(1);
      expect(await tokenOf()).toBe(token);
      await fx.edit({ "pipelines/p/triggers.yaml": triggersYaml([{ ...api, token: "from-the-file-0123456789" }]) });
      expect((await fx.scheduler.tick()).sync.updated).toBe(1);
      expect(await tokenOf()).toBe("from-the-file-0123456789");
      // the same token in the file again is no change to it (compared by digest, not by decrypting)
      const sealed = (await schedule(fx.client, "on_demand")).token_sealed;
      clock.advance(60 * 60_000);
      await fx.edit({ "pipelines/p/triggers.yaml": triggersYaml([{ ...api, token: "from-the-file-0123456789", description: "same token" }]) });
      expect((await fx.scheduler.tick()).sync.updated).toBe(1);
      expect((await schedule(fx.client, "on_demand")).token_sealed).toBe(sealed);
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });
});
