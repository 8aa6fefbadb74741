/**
 * Landing time as Mage's seeds define it: with `landing_time_enabled`, a preset trigger's
 * start_time is the target completion time, so its landing instants take start_time's second and
 * minute (@hourly), time of day (@daily), weekday (@weekly) or day of month (@monthly), read as
 * wall time in the trigger's timezone. The run then starts early by its estimated runtime.
 */
import type { ScheduleExpression } from "./interval.ts";
import { wallTimeOf } from "./wall-time.ts";

/** The presets landing time applies to (Mage: only these four). */
export const LANDING_TIME_PRESETS: readonly string[] = ["@hourly", "@daily", "@weekly", "@monthly"];

/**
 * The expression whose dates are the landing instants of `interval` for a trigger starting at
 * `startTime` in `timezone`; `interval` itself when landing time does not apply to it (another
 * interval, or no start_time to take the time from).
 */
export function landingInterval(interval: ScheduleExpression, startTime: number | null, timezone: string): ScheduleExpression {
  if (interval.kind !== "cron" || startTime === null || !LANDING_TIME_PRESETS.includes(interval.source)) return interval;
  const wall = wallTimeOf(startTime, timezone);
  const time = `${wall.second} ${wall.minute}`;
  switch (interval.source) {
    case "@hourly":
      return { kind: "cron", source: interval.source, cron: `${time} * * * *` };
    case "@daily":
      return { kind: "cron", source: interval.source, cron: `${time} ${wall.hour} * * *` };
    case "@weekly": {
      const weekday = new Date(Date.UTC(wall.year, wall.month - 1, wall.day)).getUTCDay();
      return { kind: "cron", source: interval.source, cron: `${time} ${wall.hour} * * ${weekday}` };
    }
    default:
      // the 29th-31st: that day, or the last day of a month too short to have it (never the next month)
      if (wall.day > 28) return { kind: "cron", source: interval.source, cron: `${time} ${wall.hour} 28-31 * *`, monthDay: wall.day };
      return { kind: "cron", source: interval.source, cron: `${time} ${wall.hour} ${wall.day} * *` };
  }
}
