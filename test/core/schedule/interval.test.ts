/** parseScheduleInterval: Mage's presets, 5-field cron, and precise errors for everything else. */
import { describe, expect, test } from "bun:test";
import { InvalidScheduleError, parseScheduleInterval, PRESET_CRON } from "../../../core/src/schedule/index.ts";

describe("parseScheduleInterval", () => {
  test("presets map to their cron form", () => {
    expect(parseScheduleInterval("@hourly")).toEqual({ kind: "cron", source: "@hourly", cron: "0 * * * *" });
    expect(parseScheduleInterval("@daily")).toEqual({ kind: "cron", source: "@daily", cron: "0 0 * * *" });
    expect(parseScheduleInterval("@weekly")).toEqual({ kind: "cron", source: "@weekly", cron: "0 0 * * 0" });
    expect(parseScheduleInterval("@monthly")).toEqual({ kind: "cron", source: "@monthly", cron: "0 0 1 * *" });
    expect(Object.keys(PRESET_CRON).sort()).toEqual(["@daily", "@hourly", "@monthly", "@weekly"]);
  });

  test("@once and @always_on are their own kinds", () => {
    expect(parseScheduleInterval("@once")).toEqual({ kind: "once", source: "@once" });
    expect(parseScheduleInterval("@always_on")).toEqual({ kind: "always_on", source: "@always_on" });
  });

  test("5-field cron is accepted and normalised to single spaces", () => {
    expect(parseScheduleInterval("*/15 9-17 * * 1-5")).toEqual({ kind: "cron", source: "*/15 9-17 * * 1-5", cron: "*/15 9-17 * * 1-5" });
    expect(parseScheduleInterval("  0   0 * *  MON ")).toEqual({ kind: "cron", source: "0   0 * *  MON", cron: "0 0 * * MON" });
    expect(parseScheduleInterval("0 0 29 2 *").kind).toBe("cron");
  });

  const invalid: Array<[string, RegExp]> = [
    ["", /empty/],
    ["   ", /empty/],
    ["* * *", /5 fields.*this has 3/],
    ["61 * * * *", /minute: 61/],
    ["* 24 * * *", /hour: 24/],
    ["@sometimes", /unknown preset/],
    ["@yearly", /unknown preset/],
    ["0 * * * * *", /this has 6; seconds are not supported/],
    ["0 0 1 1 * 2027 1", /this has 7/],
    ["0 0 30 2 *", /never matches/],
    ["0:0 * * * *", /illegal characters/],
    ["5/5 * * * *", /numeric prefix/],
  ];
  for (const [expr, why] of invalid) {
    test(`rejects ${JSON.stringify(expr)}, naming it`, () => {
      let error: unknown;
      try {
        parseScheduleInterval(expr);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidScheduleError);
      const message = (error as Error).message;
      expect(message).toContain(JSON.stringify(expr));
      expect(message).toMatch(why);
    });
  }
});
