/**
 * Triggers as code, written back: adds, updates, renames and removes one trigger in the text of
 * a pipeline's triggers.yaml. The file is edited through yaml's Document API rather than
 * re-serialised from plain data, so the user's comments, key order and quoting survive, and
 * keys kiln does not manage (token, envs, Mage's own) are left alone.
 *
 * Text in, text out: callers (the CLI, a server, a Worker) own reading and writing the file.
 * Every result is checked with the loader's triggers schema before it is returned, so what
 * this module writes loads again.
 */
import * as v from "valibot";
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar, type Node, type YAMLMap, type YAMLSeq } from "yaml";
import { SCHEDULE_STATUSES, SCHEDULE_TYPES, type JsonObject, type ScheduleStatus, type ScheduleType } from "../domain.ts";
import { checkEventPattern, EventPatternError } from "../events/pattern.ts";
import { InvalidScheduleError } from "../schedule/errors.ts";
import { parseScheduleInterval } from "../schedule/interval.ts";
import { schedulingSettings } from "../schedule/settings.ts";
import { isValidTimeZone } from "../schedule/wall-time.ts";
import { isPlainObject, triggersSchema } from "./schema.ts";
import { messageOf } from "../errors.ts";

/**
 * A trigger to write. `undefined` (or an absent key) leaves the file's value as it is; `null`
 * removes the key (the loader's default applies). `variables` and `settings` replace the whole
 * mapping. A TriggerConfig from the loader is a valid input, so a loaded trigger round-trips.
 */
export interface TriggerInput {
  /** The trigger's name after the write (with `oldName`, the new name). */
  name: string;
  /** Required when the trigger is new. */
  scheduleType?: ScheduleType | null;
  /** A preset (`@daily`, `@once`...) or a 5-field cron; required for a time trigger. */
  scheduleInterval?: string | null;
  /** Epoch ms, or a date-time the loader reads: `YYYY-MM-DD HH:MM:SS` (UTC) or ISO 8601 with an offset. */
  startTime?: number | string | null;
  /** IANA name; the loader's default is UTC. */
  timezone?: string | null;
  /** The loader's default is inactive. */
  status?: ScheduleStatus | null;
  variables?: JsonObject | null;
  /** Seconds. */
  sla?: number | null;
  /** Mage's settings plus kiln's scheduling keys; camelCase keys are written in snake_case. */
  settings?: JsonObject | null;
  description?: string | null;
  /** Event triggers: the EventBridge-style pattern events must match. */
  eventPattern?: JsonObject | null;
  /** When the trigger was last switched on (epoch ms or a date-time, as start_time): no runs for dates before it. */
  lastEnabledAt?: number | string | null;
  /** Mage's trigger tags. */
  tags?: string[] | null;
}

export interface UpsertTriggerOptions {
  /** The trigger to update under its current name (a rename when it differs from `name`); it must exist. */
  oldName?: string;
  /** `add`: the trigger must not exist yet; `update`: it must exist; `upsert` (default): either. */
  mode?: "upsert" | "add" | "update";
}

/** A trigger that cannot be written; `field` is the snake_case key at fault ("" for the file). */
export class TriggerYamlError extends Error {
  override readonly name = "TriggerYamlError";

  constructor(
    readonly field: string,
    /** The message without the field, e.g. `expected one of time, event, api, got "cron"`. */
    readonly detail: string,
  ) {
    super(field ? `${field}: ${detail}` : detail);
  }
}

/** Keys in the order a new trigger is written (Mage's keys; the loader reads any order). */
const KEY_ORDER = [
  "name",
  "description",
  "schedule_type",
  "schedule_interval",
  "start_time",
  "timezone",
  "status",
  "last_enabled_at",
  "sla",
  "variables",
  "settings",
  "tags",
  "event_pattern",
] as const;
type Key = (typeof KEY_ORDER)[number];

/** Returns `existingText` (null: no file yet) with the trigger added or updated in place. */
export function upsertTriggerYaml(existingText: string | null, trigger: TriggerInput, options: UpsertTriggerOptions = {}): string {
  const mode = options.mode ?? "upsert";
  if (typeof trigger?.name !== "string" || trigger.name.trim() === "") throw new TriggerYamlError("name", "expected a non-empty string");
  const values = triggerValues(trigger);
  const doc = openDocument(existingText);
  const seq = triggersSeq(doc, true);
  const target = options.oldName ?? trigger.name;
  const index = indexOfTrigger(seq, target);
  const clash = target === trigger.name ? -1 : indexOfTrigger(seq, trigger.name);

  if (index === -1) {
    if (options.oldName !== undefined || mode === "update") throw notFound(seq, target);
    const item = newTrigger(doc, values);
    // a file that separates its triggers with blank lines gets one before the new trigger too
    const last = seq.items.at(-1) as Node | undefined;
    if (seq.items.length > 1 && last?.spaceBefore) item.spaceBefore = true;
    seq.flow = false;
    seq.items.push(item);
  } else {
    if (mode === "add") throw new TriggerYamlError("name", `a trigger named ${JSON.stringify(target)} already exists`);
    if (clash !== -1) throw new TriggerYamlError("name", `cannot rename ${JSON.stringify(target)} to ${JSON.stringify(trigger.name)}: a trigger with that name already exists`);
    updateTrigger(doc, seq.items[index] as YAMLMap, values);
  }
  return finish(doc, existingText);
}

/** Returns `existingText` without the trigger named `name`; throws TriggerYamlError if there is none. */
export function removeTriggerYaml(existingText: string | null, name: string): string {
  if (existingText === null) throw new TriggerYamlError("name", `no trigger named ${JSON.stringify(name)}: the pipeline has no triggers.yaml`);
  const doc = openDocument(existingText);
  const seq = triggersSeq(doc, false);
  const index = seq ? indexOfTrigger(seq, name) : -1;
  if (!seq || index === -1) throw notFound(seq, name);
  // The comment above a trigger goes with it. yaml attaches the one above the first item to the
  // list rather than to the item, so that one is dropped by hand; the comments above the
  // `triggers:` key and inside other triggers stay.
  seq.items.splice(index, 1);
  if (index === 0) {
    seq.commentBefore = undefined;
    const first = seq.items[0] as Node | undefined;
    if (first) first.spaceBefore = false;
  }
  return finish(doc, existingText);
}

/**
 * Epoch ms of a trigger start_time as triggers.yaml may write it (`2024-01-01 00:00:00`, UTC
 * when there is no offset, or ISO 8601), or null if it is not one. Read by the loader's own
 * schema, so a value accepted here is read identically when the file is loaded.
 */
export function parseTriggerStartTime(value: string | number): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : null;
  const result = v.safeParse(triggersSchema, { triggers: [{ name: "start_time", schedule_type: "time", start_time: value }] });
  return result.success ? result.output[0]!.startTime : null;
}

/** `YYYY-MM-DD HH:MM:SS` in UTC, as Mage writes start_time; ISO 8601 when it has milliseconds. */
export function formatTriggerStartTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return ms % 1000 === 0 && /^\d{4}-/.test(iso) ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : iso;
}

// ---------------------------------------------------------------------------------------------
// Input

/** The input checked and turned into the file's snake_case values; undefined = leave as is. */
function triggerValues(t: TriggerInput): Partial<Record<Key, unknown>> {
  const out: Partial<Record<Key, unknown>> = { name: t.name };
  const set = <T>(key: Key, value: T | null | undefined, check: (value: T) => unknown) => {
    if (value === undefined) return;
    out[key] = value === null ? null : check(value);
  };
  set("description", t.description, (d) => {
    if (typeof d !== "string") throw new TriggerYamlError("description", `expected a string, got ${show(d)}`);
    return d;
  });
  set("schedule_type", t.scheduleType, (type) => {
    if (!SCHEDULE_TYPES.includes(type)) throw new TriggerYamlError("schedule_type", `expected one of ${SCHEDULE_TYPES.join(", ")}, got ${show(type)}`);
    return type;
  });
  set("schedule_interval", t.scheduleInterval, (interval) => {
    try {
      return parseScheduleInterval(interval).source;
    } catch (error) {
      if (error instanceof InvalidScheduleError) throw new TriggerYamlError("schedule_interval", error.message);
      throw error;
    }
  });
  set("start_time", t.startTime, (start) => {
    const ms = typeof start === "number" || typeof start === "string" ? parseTriggerStartTime(start) : null;
    if (ms === null) {
      throw new TriggerYamlError("start_time", `expected epoch milliseconds or a date-time such as 2024-01-01 00:00:00 (UTC) or 2024-01-01T00:00:00+02:00, got ${show(start)}`);
    }
    return formatTriggerStartTime(ms);
  });
  set("last_enabled_at", t.lastEnabledAt, (at) => {
    const ms = typeof at === "number" || typeof at === "string" ? parseTriggerStartTime(at) : null;
    if (ms === null) throw new TriggerYamlError("last_enabled_at", `expected epoch milliseconds or a date-time such as 2024-01-01 00:00:00 (UTC), got ${show(at)}`);
    return formatTriggerStartTime(ms);
  });
  set("timezone", t.timezone, (tz) => {
    if (!isValidTimeZone(tz)) throw new TriggerYamlError("timezone", `expected an IANA time zone such as UTC or Europe/Paris, got ${show(tz)}`);
    return tz;
  });
  set("status", t.status, (status) => {
    if (!SCHEDULE_STATUSES.includes(status)) throw new TriggerYamlError("status", `expected one of ${SCHEDULE_STATUSES.join(", ")}, got ${show(status)}`);
    return status;
  });
  set("sla", t.sla, (sla) => {
    if (typeof sla !== "number" || !Number.isFinite(sla) || sla <= 0) throw new TriggerYamlError("sla", `expected a positive number of seconds, got ${show(sla)}`);
    return sla;
  });
  set("variables", t.variables, (vars) => {
    if (!isPlainObject(vars)) throw new TriggerYamlError("variables", `expected an object, got ${show(vars)}`);
    return vars;
  });
  set("settings", t.settings, (settings) => {
    if (!isPlainObject(settings)) throw new TriggerYamlError("settings", `expected an object, got ${show(settings)}`);
    const snake: JsonObject = {};
    // a loaded TriggerConfig has camelCase settings (skipIfPreviousRunning); the file is snake_case
    for (const [key, value] of Object.entries(settings)) {
      snake[/^[a-z]+(?:[A-Z][a-z]+)+$/.test(key) ? key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : key] = value;
    }
    try {
      // the scheduler reads these when it creates runs; a bad value is refused now, not then
      schedulingSettings(snake);
    } catch (error) {
      if (!(error instanceof InvalidScheduleError)) throw error;
      const named = /^settings\.(\w+): (.*)$/s.exec(error.message);
      throw named ? new TriggerYamlError(`settings.${named[1]}`, named[2]!) : new TriggerYamlError("settings", error.message);
    }
    return snake;
  });
  set("tags", t.tags, (tags) => {
    if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === "string")) throw new TriggerYamlError("tags", `expected a list of strings, got ${show(tags)}`);
    return tags;
  });
  set("event_pattern", t.eventPattern, (pattern) => {
    try {
      checkEventPattern(pattern);
    } catch (error) {
      if (error instanceof EventPatternError) throw new TriggerYamlError(error.path ? `event_pattern.${error.path}` : "event_pattern", error.detail);
      throw error;
    }
    return pattern;
  });
  return out;
}

function show(value: unknown): string {
  return value === undefined ? "nothing" : (JSON.stringify(value) ?? String(value));
}

// ---------------------------------------------------------------------------------------------
// The document

function openDocument(text: string | null): Document {
  if (text === null) return new Document({ triggers: [] });
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter });
  const error = doc.errors[0];
  if (error) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    throw new TriggerYamlError("", `triggers.yaml is not valid YAML: ${error.message} at line ${line}, column ${col}`);
  }
  if (doc.contents !== null && !isMap(doc.contents)) throw new TriggerYamlError("", "triggers.yaml: expected a mapping with a triggers key");
  return doc;
}

/** The `triggers:` list; with `create`, made (or turned from null into a list) when missing. */
function triggersSeq(doc: Document, create: true): YAMLSeq;
function triggersSeq(doc: Document, create: false): YAMLSeq | null;
function triggersSeq(doc: Document, create: boolean): YAMLSeq | null {
  const node = doc.get("triggers", true);
  if (isSeq(node)) return node;
  if (node !== undefined && !(isScalar(node) && node.value === null)) throw new TriggerYamlError("triggers", "expected a list of triggers");
  if (!create) return null;
  const seq = doc.createNode([]) as YAMLSeq;
  doc.set("triggers", seq);
  return seq;
}

function indexOfTrigger(seq: YAMLSeq, name: string): number {
  return seq.items.findIndex((item) => isMap(item) && item.get("name") === name);
}

function notFound(seq: YAMLSeq | null, name: string): TriggerYamlError {
  const names = (seq?.items ?? []).flatMap((item) => (isMap(item) ? [String(item.get("name"))] : []));
  return new TriggerYamlError("name", `no trigger named ${JSON.stringify(name)} (triggers: ${names.join(", ") || "none"})`);
}

function newTrigger(doc: Document, values: Partial<Record<Key, unknown>>): YAMLMap {
  if (values.schedule_type == null) throw new TriggerYamlError("schedule_type", "required for a new trigger (one of time, event, api)");
  const map = doc.createNode({}) as YAMLMap;
  for (const key of KEY_ORDER) {
    const value = values[key];
    if (value !== undefined && value !== null) map.set(key, valueNode(doc, key, value));
  }
  requireInterval(map);
  return map;
}

function updateTrigger(doc: Document, map: YAMLMap, values: Partial<Record<Key, unknown>>): void {
  for (const key of KEY_ORDER) {
    const value = values[key];
    if (value === undefined) continue;
    if (value === null) {
      if (key === "name" || key === "schedule_type") throw new TriggerYamlError(key, "cannot be removed");
      map.delete(key);
      continue;
    }
    const current = map.get(key, true) as Node | undefined;
    if (isPlainObject(value) && isMap(current) && !current.anchor) {
      replaceEntries(doc, current, value);
    } else if (isScalar(current) && !current.anchor && !isPlainObject(value) && !Array.isArray(value)) {
      // the old scalar node keeps its comment and its quoting style
      current.value = value;
    } else {
      // (an anchored node is replaced, not edited: an alias elsewhere must not change with it)
      map.set(key, valueNode(doc, key, value));
    }
  }
  requireInterval(map);
}

/** Makes `map` hold exactly `value`'s keys, editing in place so comments on kept keys survive. */
function replaceEntries(doc: Document, map: YAMLMap, value: JsonObject): void {
  const wasEmpty = map.items.length === 0;
  for (const pair of [...map.items]) {
    const key = isScalar(pair.key) ? pair.key.value : pair.key;
    if (typeof key !== "string" || !(key in value)) map.delete(pair.key);
  }
  for (const [key, item] of Object.entries(value)) {
    const current = map.get(key, true) as Node | undefined;
    if (isScalar(current) && !current.anchor && (item === null || typeof item !== "object")) current.value = item;
    else map.set(key, doc.createNode(item));
  }
  // `variables: {}` that gains keys reads better as a block than as `{ a: 1 }`
  if (wasEmpty && map.items.length > 0) map.flow = false;
}

function valueNode(doc: Document, key: Key, value: unknown): Node {
  const node = doc.createNode(value) as Node;
  // Mage quotes its intervals ('@daily', '0 * * * *'); a plain cron reads like a list of globs
  if (key === "schedule_interval" && node instanceof Scalar) node.type = Scalar.QUOTE_SINGLE;
  return node;
}

function requireInterval(map: YAMLMap): void {
  if (map.get("schedule_type") === "time" && map.get("schedule_interval") == null) {
    throw new TriggerYamlError("schedule_interval", "required for a time trigger (a preset such as @daily or a 5-field cron)");
  }
}

/** The document as text, after checking it loads: same schema and unique names as the loader. */
function finish(doc: Document, originalText: string | null): string {
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (error) {
    throw new TriggerYamlError("", `triggers.yaml would not load: ${messageOf(error)}`);
  }
  const result = v.safeParse(triggersSchema, data ?? {}, { abortEarly: true });
  if (!result.success) {
    const issue = result.issues[0];
    const path = (issue.path ?? []).map(({ key }, i) => (typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`)).join("");
    throw new TriggerYamlError(path, `expected ${issue.message}, got ${show(issue.input)}`);
  }
  const seen = new Set<string>();
  for (const [i, t] of result.output.entries()) {
    if (seen.has(t.name)) throw new TriggerYamlError(`triggers[${i}].name`, `${JSON.stringify(t.name)} is used by two triggers`);
    seen.add(t.name);
  }
  // no folding of long values, and `[prod]` rather than `[ prod ]`, as PyYAML (Mage) and most people write it
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false, indentSeq: seqIsIndented(doc, originalText) });
}

/** Whether the file indents its list items under `triggers:` (kiln's style) or not (Mage's). */
function seqIsIndented(doc: Document, text: string | null): boolean {
  const seq = doc.get("triggers", true);
  const start = isSeq(seq) && !seq.flow ? seq.range?.[0] : undefined;
  if (text === null || start === undefined) return true;
  return start - (text.lastIndexOf("\n", start - 1) + 1) > 0;
}
