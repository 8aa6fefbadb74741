/**
 * `kiln trigger add|update|remove|preview`: triggers as code. add, update and remove edit
 * pipelines/<pipeline>/triggers.yaml in place (comments and key order kept) and check that the
 * project still loads; a running scheduler (`kiln start`) reloads the project and syncs the
 * change by itself, so the database is not touched here. preview prints the execution dates a
 * trigger, or a schedule given by flags, would create in [--from, --to).
 */
import { closeSync, existsSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type JsonObject, type ScheduleStatus, type ScheduleType } from "@kiln/core";
import { INSTANT_RANGE, isInstant, JSON_DEPTH_MESSAGE, jsonTextDepth, MAX_JSON_DEPTH, nameProblem } from "@kiln/core/bounds";
import { parseTriggerStartTime, removeTriggerYaml, TriggerYamlError, upsertTriggerYaml, type Pipeline, type Project, type TriggerInput } from "@kiln/core/project";
import { DST_GAP_POLICIES, DST_OVERLAP_POLICIES, InvalidScheduleError, isValidTimeZone, occurrences, offsetAt, parseScheduleInterval, scheduleSpec, schedulingSettings, wallTimeOf, type DstGapPolicy, type DstOverlapPolicy, type ScheduleSpec } from "@kiln/core/schedule";
import { parseCommand, parseId, runSubcommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE, SUBCOMMAND_USAGE } from "../usage.ts";
import { loadUserProject } from "../project.ts";

const USAGE = SUBCOMMAND_USAGE["trigger"];

export const usage = COMMAND_USAGE["trigger"];

/** Most dates preview prints unless --limit says otherwise. */
const DEFAULT_LIMIT = 1000;

export function trigger(args: string[]): Promise<number> {
  return runSubcommand("trigger", { add, update, remove, preview }, args);
}

// ---------------------------------------------------------------------------------------------
// add, update, remove

/** The flags that set a trigger's fields, shared by add and update. */
const FIELD_FLAGS = {
  "schedule-type": { type: "string" },
  "schedule-interval": { type: "string" },
  timezone: { type: "string" },
  "start-time": { type: "string" },
  status: { type: "string" },
  variables: { type: "string" },
  settings: { type: "string" },
  sla: { type: "string" },
  description: { type: "string" },
  "event-pattern": { type: "string" },
} as const;

type FieldValues = { [K in keyof typeof FIELD_FLAGS]?: string };

/** The flag that sets each triggers.yaml key, to word core's errors in the user's terms. */
const FLAG_OF: Record<string, string> = {
  schedule_type: "--schedule-type",
  schedule_interval: "--schedule-interval",
  timezone: "--timezone",
  start_time: "--start-time",
  status: "--status",
  variables: "--variables",
  settings: "--settings",
  sla: "--sla",
  description: "--description",
  event_pattern: "--event-pattern",
};

async function add(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("trigger add", args, { name: { type: "string" }, ...FIELD_FLAGS });
  const [projectPath, pipelineUuid, ...extra] = positionals;
  if (!projectPath || !pipelineUuid || extra.length > 0) throw new UsageError(`usage: ${USAGE.add}`);
  if (values.name === undefined) throw new UsageError("--name: required (the trigger's name, unique in its pipeline)");
  if (values["schedule-type"] === undefined) throw new UsageError("--schedule-type: required (time, api or event)");
  const input = triggerInput(values.name, values);
  // written out even when it is the loader's default, so the file says whether the trigger fires
  input.status ??= "inactive";
  const status = input.status;
  const { project, pipeline } = await loadPipeline(projectPath, pipelineUuid);
  const file = await persist(projectPath, project, pipeline, (text) => upsertTriggerYaml(text, input, { mode: "add" }));
  process.stdout.write(`added trigger ${values.name} to ${file} (status ${status})\n`);
  process.stdout.write(schedulerNote(projectPath, status));
  return 0;
}

async function update(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("trigger update", args, { rename: { type: "string" }, ...FIELD_FLAGS });
  const [projectPath, pipelineUuid, name, ...extra] = positionals;
  if (!projectPath || !pipelineUuid || !name || extra.length > 0) throw new UsageError(`usage: ${USAGE.update}`);
  const changes = Object.keys(values);
  if (changes.length === 0) throw new UsageError(`kiln trigger update: nothing to change; give --rename or a field flag (usage: ${USAGE.update})`);
  const input = triggerInput(values.rename ?? name, values);
  const { project, pipeline } = await loadPipeline(projectPath, pipelineUuid);
  const file = await persist(projectPath, project, pipeline, (text) => {
    if (text === null) throw new UsageError(`no trigger ${name} in ${pipelineUuid}: ${pipelineFile(pipeline)} does not exist`);
    return upsertTriggerYaml(text, input, { oldName: name, mode: "update" });
  });
  const renamed = values.rename !== undefined && values.rename !== name ? ` (renamed ${name} to ${values.rename})` : "";
  process.stdout.write(`updated trigger ${values.rename ?? name} in ${file}${renamed}: ${changes.map((c) => `--${c}`).join(", ")}\n`);
  process.stdout.write(schedulerNote(projectPath, null));
  return 0;
}

async function remove(args: string[]): Promise<number> {
  const { positionals } = parseCommand("trigger remove", args, {});
  const [projectPath, pipelineUuid, name, ...extra] = positionals;
  if (!projectPath || !pipelineUuid || !name || extra.length > 0) throw new UsageError(`usage: ${USAGE.remove}`);
  const { project, pipeline } = await loadPipeline(projectPath, pipelineUuid);
  const file = await persist(projectPath, project, pipeline, (text) => removeTriggerYaml(text, name));
  process.stdout.write(`removed trigger ${name} from ${file}\n`);
  // sync-triggers turns a trigger deleted from the file inactive rather than deleting its runs
  process.stdout.write(`a running scheduler (kiln start ${projectPath}) makes it inactive when it next reloads the project; its past runs are kept\n`);
  return 0;
}

/** Checks and converts the field flags; an empty value removes the key (the loader's default applies). */
function triggerInput(name: string, values: FieldValues): TriggerInput {
  const problem = nameProblem(name);
  if (problem) throw new UsageError(`--name (or --rename): ${problem}`);
  const input: TriggerInput = { name };
  const text = (flag: keyof FieldValues) => {
    const value = values[flag];
    return value === undefined ? undefined : value === "" ? null : value;
  };
  if (values["schedule-type"] !== undefined) input.scheduleType = values["schedule-type"] as ScheduleType;
  if (values.status !== undefined) input.status = values.status as ScheduleStatus;
  input.scheduleInterval = text("schedule-interval");
  input.timezone = text("timezone");
  input.startTime = text("start-time");
  input.description = text("description");
  const sla = text("sla");
  if (sla !== undefined && sla !== null) {
    const seconds = Number(sla);
    if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`--sla: expected a positive number of seconds, got ${JSON.stringify(sla)}`);
    input.sla = seconds;
  } else {
    input.sla = sla;
  }
  if (values.variables !== undefined) input.variables = parseJsonObject("--variables", values.variables);
  if (values.settings !== undefined) input.settings = parseJsonObject("--settings", values.settings);
  if (values["event-pattern"] !== undefined) input.eventPattern = values["event-pattern"] === "" ? null : parseJsonObject("--event-pattern", values["event-pattern"]);
  return input;
}

/** A JSON object flag, or a UsageError naming the flag. */
export function parseJsonObject(flag: string, text: string): JsonObject {
  if (jsonTextDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new UsageError(`${flag}: expected a JSON object ${JSON_DEPTH_MESSAGE.replace(/^nested/, "nested at most")}, got one ${JSON_DEPTH_MESSAGE}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${flag}: expected a JSON object, got invalid JSON (${(error as Error).message})`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(`${flag}: expected a JSON object, got ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`);
  }
  return value as JsonObject;
}

async function loadPipeline(projectPath: string, pipelineUuid: string): Promise<{ project: Project; pipeline: Pipeline }> {
  const project = await loadUserProject(projectPath);
  const pipeline = project.pipelines.get(pipelineUuid);
  if (!pipeline) {
    const known = [...project.pipelines.keys()].join(", ") || "none";
    throw new UsageError(`no pipeline ${pipelineUuid} in ${projectPath} (pipelines: ${known})`);
  }
  return { project, pipeline };
}

function pipelineFile(pipeline: Pipeline): string {
  return `pipelines/${pipeline.uuid}/triggers.yaml`;
}

/**
 * Applies `edit` to the pipeline's triggers.yaml text (null when there is none), writes the
 * result atomically, and loads the project again; if that fails the old file is put back and
 * the loader's message becomes the UsageError. Returns the file's project-relative path.
 */
async function persist(projectPath: string, project: Project, pipeline: Pipeline, edit: (text: string | null) => string): Promise<string> {
  const rel = pipelineFile(pipeline);
  const file = join(project.root, rel);
  const before = existsSync(file) ? readFileSync(file, "utf8") : null;
  let after: string;
  try {
    after = edit(before);
  } catch (error) {
    if (error instanceof TriggerYamlError) throw new UsageError(flagMessage(error, rel));
    throw error;
  }
  writeAtomically(file, after);
  try {
    await loadUserProject(projectPath);
  } catch (error) {
    // the file must never be left in a state the scheduler would refuse to load
    if (before === null) rmSync(file, { force: true });
    else writeAtomically(file, before);
    if (error instanceof UsageError) throw new UsageError(`${error.message} (the change was not saved: ${rel} is as it was)`);
    throw error;
  }
  return rel;
}

/** Core's error in the CLI's terms: `--sla: expected ...` for a field a flag sets. */
function flagMessage(error: TriggerYamlError, rel: string): string {
  const [key, ...sub] = error.field.split(".");
  const flag = key === undefined ? undefined : FLAG_OF[key];
  if (flag) return `${flag}: ${sub.length > 0 ? `${sub.join(".")}: ` : ""}${error.detail}`;
  if (error.field === "name" || error.field === "") return error.detail;
  // a problem elsewhere in the file (another trigger), which the user has to fix by hand
  return `${rel}: ${error.message}`;
}

/**
 * Replaces `file` with `text` through a temporary file in the same folder and a rename, so a
 * scheduler reloading the project meanwhile reads the old file or the new one, never half of one.
 */
export function writeAtomically(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const mode = existsSync(file) ? statSync(file).mode & 0o777 : 0o644;
  const fd = openSync(tmp, "w", mode);
  try {
    fchmodSync(fd, mode); // the umask must not narrow the file's permissions
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

function schedulerNote(projectPath: string, status: string | null): string {
  const inactive = status === "inactive" ? "; it is inactive, so it creates no runs until --status active" : "";
  return `a running scheduler (kiln start ${projectPath}) picks the change up when it next reloads the project${inactive}\n`;
}

// ---------------------------------------------------------------------------------------------
// preview

async function preview(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("trigger preview", args, {
    from: { type: "string" },
    to: { type: "string" },
    json: { type: "boolean" },
    limit: { type: "string" },
    "schedule-interval": { type: "string" },
    timezone: { type: "string" },
    "dst-gap": { type: "string" },
    "dst-overlap": { type: "string" },
    "start-time": { type: "string" },
  });
  const scheduleFlags = (["schedule-interval", "timezone", "dst-gap", "dst-overlap", "start-time"] as const).filter((f) => values[f] !== undefined);
  if (positionals.length !== 0 && positionals.length !== 3) throw new UsageError(`usage: ${USAGE.preview}`);
  if (positionals.length === 0 && values["schedule-interval"] === undefined) {
    throw new UsageError(`kiln trigger preview: give <project> <pipeline> <name>, or --schedule-interval (usage: ${USAGE.previewFlags})`);
  }
  if (positionals.length === 3 && scheduleFlags.length > 0) {
    throw new UsageError(`--${scheduleFlags[0]}: only without <project> <pipeline> <name>; a trigger is previewed with its own settings`);
  }
  if (values.from === undefined) throw new UsageError("--from: required (an ISO 8601 instant, e.g. 2026-03-07T00:00:00Z)");
  if (values.to === undefined) throw new UsageError("--to: required (an ISO 8601 instant, e.g. 2026-03-10T00:00:00Z)");
  const from = parseInstant("--from", values.from);
  const to = parseInstant("--to", values.to);
  if (to <= from) throw new UsageError(`--to: expected an instant after --from (${new Date(from).toISOString()}), got ${values.to}`);
  const limit = values.limit === undefined ? DEFAULT_LIMIT : parseId("--limit", values.limit);

  const notes: string[] = [];
  let spec: ScheduleSpec;
  if (positionals.length === 3) {
    const [projectPath, pipelineUuid, name] = positionals as [string, string, string];
    spec = await triggerSpec(projectPath, pipelineUuid, name, notes);
  } else {
    spec = flagSpec(values);
  }
  if (spec.interval.kind === "always_on") {
    throw new UsageError("@always_on has no execution dates: the scheduler starts a run whenever none is active");
  }
  if (spec.interval.kind === "once" && spec.startTime === null) {
    notes.push("@once without a start time has no date of its own: it runs once, when it is enabled");
  }

  // occurrences() takes (fromExclusive, toInclusive]; instants are whole ms, so [from, to) is (from - 1, to - 1]
  const dates = occurrences(spec, from - 1, to - 1, limit + 1);
  if (dates.length > limit) {
    dates.length = limit;
    notes.push(`showing the first ${limit} execution dates; more follow before ${new Date(to).toISOString()} (raise --limit)`);
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(dates.map((d) => new Date(d).toISOString()))}\n`);
  } else {
    process.stdout.write(dates.map((d) => `${new Date(d).toISOString()}  ${wallLabel(d, spec.timezone)}\n`).join(""));
    if (dates.length === 0) notes.push(`no execution dates in [${new Date(from).toISOString()}, ${new Date(to).toISOString()})`);
  }
  for (const note of notes) process.stderr.write(`kiln: note: ${note}\n`);
  return 0;
}

/** A trigger's schedule as the scheduler builds it: its timezone, start_time and DST policies. */
async function triggerSpec(projectPath: string, pipelineUuid: string, name: string, notes: string[]): Promise<ScheduleSpec> {
  const { pipeline } = await loadPipeline(projectPath, pipelineUuid);
  const trigger = pipeline.triggers.find((t) => t.name === name);
  if (!trigger) {
    const known = pipeline.triggers.map((t) => t.name).join(", ") || "none";
    throw new UsageError(`no trigger ${name} in pipeline ${pipelineUuid} (triggers: ${known})`);
  }
  if (trigger.scheduleType !== "time") {
    throw new UsageError(`trigger ${name} is an ${trigger.scheduleType} trigger: only time triggers have execution dates`);
  }
  if (trigger.scheduleInterval === null) throw new UsageError(`trigger ${name} has no schedule_interval, so it has no execution dates`);
  if (trigger.status !== "active") notes.push(`trigger ${name} is inactive: it creates none of these runs until its status is active`);
  try {
    const settings = schedulingSettings(trigger.settings);
    return scheduleSpec({
      interval: trigger.scheduleInterval,
      timezone: trigger.timezone,
      startTime: trigger.startTime,
      dstGap: settings.dstGap,
      dstOverlap: settings.dstOverlap,
      landingTime: settings.landingTimeEnabled,
    });
  } catch (error) {
    if (error instanceof InvalidScheduleError) throw new UsageError(`${pipelineFile(pipeline)}: trigger ${name}: ${error.message}`);
    throw error;
  }
}

/** The schedule given by preview's flags, each checked and named when wrong. */
function flagSpec(values: { [flag: string]: string | boolean | undefined }): ScheduleSpec {
  const flag = (name: string) => values[name] as string | undefined;
  const text = flag("schedule-interval")!;
  let interval;
  try {
    interval = parseScheduleInterval(text);
  } catch (error) {
    if (error instanceof InvalidScheduleError) throw new UsageError(`--schedule-interval: ${error.message}`);
    throw error;
  }
  const timezone = flag("timezone") ?? "UTC";
  if (!isValidTimeZone(timezone)) throw new UsageError(`--timezone: expected an IANA time zone such as UTC or Europe/Paris, got ${JSON.stringify(timezone)}`);
  const dstGap = flag("dst-gap") ?? "shift";
  if (!DST_GAP_POLICIES.includes(dstGap as DstGapPolicy)) throw new UsageError(`--dst-gap: expected ${DST_GAP_POLICIES.join(" or ")}, got ${JSON.stringify(dstGap)}`);
  const dstOverlap = flag("dst-overlap") ?? "first";
  if (!DST_OVERLAP_POLICIES.includes(dstOverlap as DstOverlapPolicy)) {
    throw new UsageError(`--dst-overlap: expected one of ${DST_OVERLAP_POLICIES.join(", ")}, got ${JSON.stringify(dstOverlap)}`);
  }
  const start = flag("start-time");
  const startTime = start === undefined ? null : parseTriggerStartTime(start);
  if (startTime === null && start !== undefined) {
    throw new UsageError(`--start-time: expected a date-time such as 2026-01-01 00:00:00 (UTC) or 2026-01-01T00:00:00+02:00, got ${JSON.stringify(start)}`);
  }
  return scheduleSpec({ interval, timezone, startTime, dstGap: dstGap as DstGapPolicy, dstOverlap: dstOverlap as DstOverlapPolicy });
}

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Epoch ms of an ISO 8601 flag value: a date (UTC midnight) or a date-time with `Z` or an
 * offset. A date-time without one is refused: it would silently mean the machine's local time.
 */
export function parseInstant(flag: string, text: string): number {
  const bad = (why: string): never => {
    throw new UsageError(`${flag}: expected an ISO 8601 date or date-time with Z or an offset (e.g. 2026-03-07T00:00:00Z), got ${JSON.stringify(text)}${why}`);
  };
  const m = DATE_ONLY.exec(text) ?? DATE_TIME.exec(text);
  if (!m) return bad("");
  const isDateOnly = m.length === 4;
  if (!isDateOnly && m[8] === undefined) bad(": add Z for UTC or an offset such as +02:00");
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number];
  const millis = Number((m[7] ?? "0").slice(0, 3).padEnd(3, "0"));
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, millis);
  // Date rolls 2026-02-30 over to March 2nd and 24:00 to the next day; those are typos, not instants
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day || d.getUTCHours() !== hour || d.getUTCMinutes() !== minute || d.getUTCSeconds() !== second) {
    bad(": no such date or time");
  }
  const ms = d.getTime() - offsetMinutes(isDateOnly ? undefined : m[8]) * 60_000;
  if (!isInstant(ms)) bad(`: outside ${INSTANT_RANGE}`);
  return ms;
}

function offsetMinutes(offset: string | undefined): number {
  if (!offset || offset.toUpperCase() === "Z") return 0;
  const digits = offset.slice(1).replace(":", "");
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0);
  return offset.startsWith("-") ? -minutes : minutes;
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** `2026-03-08 03:00 -04:00 (EDT)`: the wall time in `tz`, its UTC offset and, when it has one, the zone's abbreviation. */
function wallLabel(instant: number, tz: string): string {
  const w = wallTimeOf(instant, tz);
  const seconds = Math.round(offsetAt(instant, tz) / 1000);
  const abs = Math.abs(seconds);
  const offset = `${seconds < 0 ? "-" : "+"}${pad(Math.floor(abs / 3600))}:${pad(Math.floor((abs % 3600) / 60))}${abs % 60 ? `:${pad(abs % 60)}` : ""}`;
  const time = `${pad(w.hour)}:${pad(w.minute)}${w.second ? `:${pad(w.second)}` : ""}`;
  const name = abbreviation(instant, tz);
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)} ${time} ${offset}${name ? ` (${name})` : ""}`;
}

const abbreviations = new Map<string, Intl.DateTimeFormat>();

/** EDT, CET, UTC...; null where the runtime only knows a `GMT+1` style name, which the offset already says. */
function abbreviation(instant: number, tz: string): string | null {
  let format = abbreviations.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "short" });
    abbreviations.set(tz, format);
  }
  const name = format.formatToParts(instant).find((p) => p.type === "timeZoneName")?.value ?? "";
  return /^[A-Z]{2,5}$/.test(name) ? name : null;
}
