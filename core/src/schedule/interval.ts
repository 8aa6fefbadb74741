/**
 * Parses a schedule's `schedule_interval` (Mage's presets, croniter's nicknames, a 5-field cron
 * or a 6-field cron whose first field is seconds, as Mage accepts through croniter) into a
 * tagged value. Validation happens here, once, so the time math never meets a bad expression.
 */
import { Cron, CronPattern } from "croner";
import { InvalidScheduleError } from "./errors.ts";

/** A parsed schedule interval. Presets other than @once / @always_on become their cron form. */
export type ScheduleExpression =
  | { kind: "once"; source: "@once" }
  | { kind: "always_on"; source: "@always_on" }
  | {
      kind: "cron";
      source: string;
      /** 5 fields, or 6 with seconds first. */
      cron: string;
      /**
       * Only for landing-time @monthly: the cron matches days 28-31 and the day kept is this one,
       * or the month's last day in a shorter month (cron alone cannot say "the 30th or the last").
       */
      monthDay?: number;
    };

/** The calendar presets and the cron expression each stands for (evaluated in wall time). */
export const PRESET_CRON: Readonly<Record<string, string>> = {
  "@hourly": "0 * * * *",
  "@daily": "0 0 * * *",
  "@weekly": "0 0 * * 0",
  "@monthly": "0 0 1 * *",
};

/** croniter's nicknames Mage also accepts, evaluated like the presets (in wall time). */
export const CRON_NICKNAMES: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@midnight": "0 0 * * *",
};

const PRESETS = ["@once", "@hourly", "@daily", "@weekly", "@monthly", "@always_on", ...Object.keys(CRON_NICKNAMES)];

/** croner's mode for an expression of this many fields (5, or 6 with seconds first). */
export function cronMode(cron: string): "5-part" | "6-part" {
  return cron.split(" ").length === 6 ? "6-part" : "5-part";
}

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
  const preset = PRESET_CRON[text] ?? CRON_NICKNAMES[text];
  if (preset !== undefined) return { kind: "cron", source: text, cron: preset };
  // croner knows more nicknames (@weekly's Monday twin...); kiln accepts Mage's and croniter's set only
  if (text.startsWith("@")) fail(`unknown preset; expected one of ${PRESETS.join(", ")} or a cron expression`);
  const fields = text.split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    fail(`a cron expression has 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, this has ${fields.length}`);
  }
  const cron = fields.join(" ");
  const mode = cronMode(cron);
  try {
    // CronPattern, not Cron: Cron takes any string containing ":" for an ISO date to run once
    new CronPattern(cron, undefined, { mode });
  } catch (err) {
    fail(String(err instanceof Error ? err.message : err).replace(/^CronPattern:\s*/, ""));
  }
  if (new Cron(cron, { utcOffset: 0, mode }).nextRun(NEVER_CHECK_FROM) === null) fail("it never matches a date");
  return { kind: "cron", source: text, cron };
}

