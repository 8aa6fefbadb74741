/** Errors raised while reading a schedule's settings: both name the offending value. */
import { KilnError } from "../errors.ts";

/** A schedule setting (interval, policy, timezone...) that kiln cannot use. */
export class InvalidScheduleError extends KilnError {
  constructor(message: string) {
    super("invalid_input", message);
    this.name = "InvalidScheduleError";
  }
}

/** A timezone that is not an IANA name this JavaScript runtime knows. */
export class InvalidTimeZoneError extends InvalidScheduleError {
  constructor(readonly timezone: string) {
    super(`invalid timezone ${JSON.stringify(timezone)}: expected an IANA name such as "UTC" or "Europe/London"`);
    this.name = "InvalidTimeZoneError";
  }
}
