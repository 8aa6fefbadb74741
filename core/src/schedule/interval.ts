/**
 * Parses a schedule's `schedule_interval` (Mage's presets or a 5-field cron) into a tagged
 * value. Validation happens here, once, so the time math never meets a bad expression.
 */
import { Cron, CronPattern } from "croner";
import { InvalidScheduleError } from "./errors.ts";

/** A parsed schedule interval. Presets other than @once / @always_on become their cron form. */
export type ScheduleExpression =
  | { kind: "once"; source: "@once" }
  | { kind: "always_on"; source: "@always_on" }
  | { kind: "cron"; source: string; cron: string };

/** The calendar presets and the cron expression each stands for (evaluated in wall time). */
export const PRESET_CRON: Readonly<Record<string, string>> = {
  "@hourly": "0 * * * *",
  "@daily": "0 0 * * *",
  "@weekly": "0 0 * * 0",
  "@monthly": "0 0 1 * *",
};

const PRESETS = ["@once", "@hourly", "@daily", "@weekly", "@monthly", "@always_on"];

// A cron whose next match after this date is null (e.g. "0 0 30 2 *") never fires at all.
const NEVER_CHECK_FROM = new Date(Date.UTC(2000, 0, 1));

/** Parses `expr`; throws InvalidScheduleError naming the expression and the reason. */
export function parseScheduleInterval(expr: string): ScheduleExpression {
  if (typeof expr !== "string") throw new InvalidScheduleError(`invalid schedule interval ${String(expr)}: not a string`);
  const text = expr.trim();
  const fail = (why: string): never => {
    throw new InvalidScheduleError(`invalid schedule interval ${JSON.stringify(expr)}: ${why}`);
  };
  if (text === "") fail("it is empty");
  if (text === "@once") return { kind: "once", source: "@once" };
  if (text === "@always_on") return { kind: "always_on", source: "@always_on" };
  const preset = PRESET_CRON[text];
  if (preset !== undefined) return { kind: "cron", source: text, cron: preset };
  // croner knows more nicknames (@yearly, @midnight...); kiln accepts Mage's set only
  if (text.startsWith("@")) fail(`unknown preset; expected one of ${PRESETS.join(", ")} or a 5-field cron expression`);
  const fields = text.split(/\s+/);
  if (fields.length !== 5) {
    fail(
      `a cron expression has 5 fields (minute hour day-of-month month day-of-week), this has ${fields.length}` +
        (fields.length === 6 ? "; seconds are not supported" : ""),
    );
  }
  const cron = fields.join(" ");
  try {
    // CronPattern, not Cron: Cron takes any string containing ":" for an ISO date to run once
    new CronPattern(cron, undefined, { mode: "5-part" });
  } catch (err) {
    fail(String(err instanceof Error ? err.message : err).replace(/^CronPattern:\s*/, ""));
  }
  if (new Cron(cron, { utcOffset: 0, mode: "5-part" }).nextRun(NEVER_CHECK_FROM) === null) fail("it never matches a date");
  return { kind: "cron", source: text, cron };
}

