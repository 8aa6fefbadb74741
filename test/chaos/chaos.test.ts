/**
 * The chaos suite's short seeded run: three real `kiln start` replicas on one libSQL file and a
 * Redis, a 10-second cron trigger, an @always_on trigger, a stream of API trigger calls and two
 * backfills, under a minute of faults (replicas SIGKILLed and restarted, frozen past the orphan
 * window, Redis killed, block processes killed). Every check of chaos/checks.ts must hold.
 * `bun run chaos` runs the long version (10 minutes, libSQL file and sqld).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { killEverythingStarted } from "../../chaos/processes.ts";
import { activeRoots, formatReport, runChaos } from "../../chaos/scenario.ts";
import { redisAvailable } from "../helpers/redis.ts";

// a test that times out leaves its processes: stop every one it started, by pid
afterAll(() => killEverythingStarted([...activeRoots]));

describe("chaos (short, seeded)", () => {
  test.skipIf(!redisAvailable())(
    "a minute of faults on 3 replicas: nothing lost, repeated, failed or recorded from a frozen replica",
    async () => {
      const report = await runChaos({
        minutes: 1,
        seed: 20_261_201,
        database: "file",
        redis: true,
        replicas: 3,
        faultEverySeconds: [2, 4],
        apiEverySeconds: [0.7, 1.5],
        orphanAfterSeconds: 5,
        settleSeconds: 25,
        log: () => {},
      });
      const text = formatReport(report);
      console.log(text);
      // the run did what it is for: faults of each kind the setup has, and work of every origin
      expect(report.faults.kill_replica + report.faults.freeze_replica).toBeGreaterThan(0);
      expect(report.faultsTotal).toBeGreaterThanOrEqual(10);
      expect(report.api.acknowledged).toBeGreaterThan(10);
      expect(report.runs.cron).toBeGreaterThan(2);
      expect(report.runs.alwaysOn).toBeGreaterThan(1);
      expect(report.runs.backfill).toBeGreaterThan(0);
      expect(report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)).toEqual([]);
    },
    115_000,
  );
});
