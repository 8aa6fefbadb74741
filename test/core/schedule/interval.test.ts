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

  test("croniter's nicknames @yearly, @annually and @midnight, as Mage accepts them", () => {
    expect(parseScheduleInterval("@yearly")).toEqual({ kind: "cron", source: "@yearly", cron: "0 0 1 1 *" });
    expect(parseScheduleInterval("@annually")).toEqual({ kind: "cron", source: "@annually", cron: "0 0 1 1 *" });
    expect(parseScheduleInterval("@midnight")).toEqual({ kind: "cron", source: "@midnight", cron: "0 0 * * *" });
  });

  test("6-field cron: seconds first, as croniter reads it", () => {
    expect(parseScheduleInterval("30 */5 * * * *")).toEqual({ kind: "cron", source: "30 */5 * * * *", cron: "30 */5 * * * *" });
    expect(parseScheduleInterval("0 0 0 29 2 *").kind).toBe("cron");
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
    ["@weekdays", /unknown preset/],
    ["60 * * * * *", /60/],
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
