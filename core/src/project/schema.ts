/**
 * Schemas for the three YAML files of a project (kiln.yaml, pipelines/<uuid>/metadata.yaml,
 * pipelines/<uuid>/triggers.yaml). They accept Mage's snake_case keys and output the camelCase
 * types of types.ts. Every schema's message is the "expected" half of an error ("a positive
 * integer"), so load.ts can turn the first issue into a readable ProjectLoadError.
 *
 * Optional keys accept null as well as absence: Mage writes `executor_config: null`,
 * `timeout: null` and the like. Unknown keys are ignored (a Mage file has many kiln does not
 * use), except in `settings` and `configuration`, which keep them for the code that reads them.
 */
import { INSTANT_RANGE, isInstant, jsonValueDepth, MAX_JSON_DEPTH, nameProblem } from "../bounds.ts";
import * as v from "valibot";
import { SCHEDULE_STATUSES, SCHEDULE_TYPES, type JsonObject, type ScheduleSettings } from "../domain.ts";
import { checkEventPattern, EventPatternError, patternOfMatchers } from "../events/pattern.ts";
import {
  BLOCK_TYPES,
  type AddonBlock,
  type AddonKind,
  DEFAULT_DATABASE_OUTPUT_BYTES,
  MAX_INLINE_OUTPUT_BYTES,
  type BlockConfig,
  type BlockConfiguration,
  type ConcurrencyConfig,
  type OutputStoreSettings,
  type Pipeline,
  type ProjectSettings,
  type RetryConfig,
  type TriggerConfig,
} from "./types.ts";

/** A block as metadata.yaml states it, before the loader derives its downstream blocks and module. */
export type BlockSpec = Omit<BlockConfig, "downstreamBlocks" | "modulePath">;

/** A pipeline as metadata.yaml states it; `uuid` and `name` are null when the file omits them. */
export type PipelineSpec = Omit<Pipeline, "uuid" | "name" | "blocks" | "blocksByUuid" | "triggers" | "callbacks" | "conditionals"> & {
  uuid: string | null;
  name: string | null;
  blocks: BlockSpec[];
  /** Mage's pipeline `type` (python, integration, streaming, ...); null when unset. */
  type: string | null;
  callbacks: AddonSpec[];
  conditionals: AddonSpec[];
};

/** A callback or conditional as metadata.yaml states it, before the loader finds its module. */
export type AddonSpec = Omit<AddonBlock, "modulePath">;

/** True for a mapping (not a list, a date or null). */
export function isPlainObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Date);
}

/** The object without its null and undefined values, so unset keys stay absent in the output. */
function compact<T extends object>(value: T): { [K in keyof T]?: NonNullable<T[K]> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null && v !== undefined)) as {
    [K in keyof T]?: NonNullable<T[K]>;
  };
}

// ---------------------------------------------------------------------------------------------
// Leaves

const string = v.string("a string");
const nonEmptyString = v.pipe(v.string("a non-empty string"), v.minLength(1, "a non-empty string"));
const boolean = v.boolean("true or false");
/** A name as kiln stores it: no control characters (NUL truncates) and no bidi controls (text that reads other than it is). */
const nameString = v.pipe(
  nonEmptyString,
  v.check((name) => nameProblem(name) === null, "a name without control or bidirectional control characters, at most 255 characters"),
);
const stringList = v.array(string, "a list of strings");
/** A mapping, nested no deeper than a JSON body may be (variables end up in runs, the API and blocks' JSON). */
const jsonObject = v.pipe(
  v.custom<JsonObject>(isPlainObject, "an object"),
  v.check((value) => jsonValueDepth(value, MAX_JSON_DEPTH) <= MAX_JSON_DEPTH, `an object nested at most ${MAX_JSON_DEPTH} levels deep`),
);

const NUMERIC_STRING = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$/;

/**
 * A number, or a string that reads as one: Mage writes `timeout: "60"` and reads it with int(),
 * so a Mage file's quoted numbers mean numbers. Anything else is left for the number check.
 */
function numeric<S extends v.GenericSchema<unknown, number>>(schema: S, expected: string) {
  return v.pipe(
    v.union([v.number(expected), v.string(expected)], expected),
    v.transform((value): unknown => (typeof value === "string" && NUMERIC_STRING.test(value) ? Number(value) : value)),
    schema,
  );
}

function integer(min: 0 | 1) {
  const expected = min === 0 ? "a non-negative integer" : "a positive integer";
  return numeric(v.pipe(v.number(expected), v.integer(expected), v.minValue(min, expected)), expected);
}

const nonNegativeNumber = numeric(
  v.pipe(v.number("a non-negative number"), v.finite("a non-negative number"), v.minValue(0, "a non-negative number")),
  "a non-negative number",
);
const positiveNumber = numeric(
  v.pipe(v.number("a positive number"), v.finite("a positive number"), v.gtValue(0, "a positive number")),
  "a positive number",
);

function oneOf<const T extends readonly string[]>(options: T) {
  return v.picklist(options, `one of ${options.join(", ")}`);
}

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Epoch ms of a YAML date, an ISO 8601 string or Mage's `YYYY-MM-DD HH:MM:SS` (UTC when there is
 * no offset); null if it is none of these. Parsed by hand because Date.parse reads an offset-less
 * date-time as local time and accepts dates such as Feb 30.
 */
function parseDateTime(value: unknown): number | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.getTime();
  if (typeof value !== "string") return null;
  const m = DATE_TIME.exec(value.trim());
  if (!m) return null;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((s) => Number(s ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const millis = Number((m[7] ?? "0").slice(0, 3).padEnd(3, "0"));
  const utc = new Date(Date.UTC(year, month - 1, day, hour, minute, second, millis));
  const valid =
    utc.getUTCFullYear() === year &&
    utc.getUTCMonth() === month - 1 &&
    utc.getUTCDate() === day &&
    utc.getUTCHours() === hour &&
    utc.getUTCMinutes() === minute &&
    utc.getUTCSeconds() === second;
  if (!valid) return null;
  return utc.getTime() - offsetMinutes(m[8]) * 60_000;
}

/** Minutes east of UTC of `Z`, `+02`, `+0200` or `-05:30`. */
function offsetMinutes(offset: string | undefined): number {
  if (!offset || offset.toUpperCase() === "Z") return 0;
  const digits = offset.slice(1).replace(":", "");
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0);
  return offset.startsWith("-") ? -minutes : minutes;
}

const dateTime = v.pipe(
  v.unknown(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const ms = parseDateTime(dataset.value);
    if (ms === null || !isInstant(ms)) {
      addIssue({ message: `a date-time such as 2024-01-01 00:00:00 or 2024-01-01T00:00:00+02:00, ${INSTANT_RANGE}` });
      return NEVER;
    }
    return ms;
  }),
);

/** True if the runtime knows the IANA time zone. */
function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
    return true;
  } catch {
    return false;
  }
}

const timeZone = v.pipe(string, v.check(isTimeZone, "an IANA time zone such as UTC or Europe/Paris"));

// ---------------------------------------------------------------------------------------------
// Objects

/** The "expected" text of an entry schema: its message (a pipe carries its first item's). */
function expectedOf(schema: unknown): string {
  const message = (schema as { message?: unknown }).message;
  return typeof message === "string" ? message : "a value";
}

/**
 * A mapping with the given entries. valibot reports a missing required key with the enclosing
 * object's message, so the message function answers with the entry's own expectation instead;
 * the leading custom check rejects lists, which valibot's object schemas would accept.
 */
function mapping<E extends v.ObjectEntries>(entries: E, expected = "an object") {
  return v.pipe(v.custom<JsonObject>(isPlainObject, expected), v.object(entries, missingKeyMessage(entries, expected)));
}

/** Like mapping(), keeping the keys it does not know. */
function looseMapping<E extends v.ObjectEntries>(entries: E, expected = "an object") {
  return v.pipe(v.custom<JsonObject>(isPlainObject, expected), v.looseObject(entries, missingKeyMessage(entries, expected)));
}

function missingKeyMessage(entries: v.ObjectEntries, expected: string) {
  return (issue: v.BaseIssue<unknown>): string => {
    const key = issue.path?.[issue.path.length - 1]?.key;
    return typeof key === "string" && key in entries ? expectedOf(entries[key]) : expected;
  };
}

/** Mage's executor names and the kiln executor each one means (k8s and ecs are spelled alike). */
export const MAGE_EXECUTOR_ALIASES: Readonly<Record<string, string>> = {
  local_python: "local",
  // Mage's "force" skips its DEFAULT_EXECUTOR_TYPE env default; kiln has no such default to skip
  local_python_force: "local",
  gcp_cloud_run: "cloud_run",
};

const executorType = v.pipe(
  nonEmptyString,
  v.transform((type) => MAGE_EXECUTOR_ALIASES[type] ?? type),
);

const retryConfig = v.pipe(
  mapping({
    retries: v.nullish(integer(0)),
    delay: v.nullish(nonNegativeNumber),
    max_delay: v.nullish(nonNegativeNumber),
    exponential_backoff: v.nullish(boolean),
  }),
  v.transform(
    (r): Partial<RetryConfig> =>
      compact({ retries: r.retries, delay: r.delay, maxDelay: r.max_delay, exponentialBackoff: r.exponential_backoff }),
  ),
);

const concurrencyConfig = v.pipe(
  mapping({
    block_run_limit: v.nullish(integer(1)),
    pipeline_run_limit: v.nullish(integer(1)),
    pipeline_run_limit_all_triggers: v.nullish(integer(1)),
    on_pipeline_run_limit_reached: v.nullish(oneOf(["wait", "skip"])),
    executor_limits: v.nullish(v.record(v.string(), integer(1), "an object of executor type: positive integer")),
  }),
  v.transform(
    (c): ConcurrencyConfig =>
      compact({
        blockRunLimit: c.block_run_limit,
        pipelineRunLimit: c.pipeline_run_limit,
        pipelineRunLimitAllTriggers: c.pipeline_run_limit_all_triggers,
        onPipelineRunLimitReached: c.on_pipeline_run_limit_reached,
        executorLimits: c.executor_limits ?? undefined,
      }),
  ),
);

/**
 * Where block outputs live (kiln.yaml `output_store`). The local folder only works when every
 * block runs on this machine; the database and S3 stores serve remote executors too.
 */
const inlineMaxBytesExpected = `a whole number of bytes from 0 (off) to ${MAX_INLINE_OUTPUT_BYTES}`;
const inlineMaxBytes = numeric(
  v.pipe(v.number(inlineMaxBytesExpected), v.integer(inlineMaxBytesExpected), v.minValue(0, inlineMaxBytesExpected), v.maxValue(MAX_INLINE_OUTPUT_BYTES, inlineMaxBytesExpected)),
  inlineMaxBytesExpected,
);
// the database and S3 stores keep no file to spare: a setting they would not act on is refused, not dropped
const localOnly = v.custom<never>(() => false, 'no value: inline_max_bytes is for output_store type "local" (the database store keeps every output in the database; S3 keeps them in the bucket)');
const variantOf = <E extends v.ObjectEntries>(entries: E) => v.object(entries, missingKeyMessage(entries, "an object"));
const outputStore = v.pipe(
  v.variant(
    "type",
    [
      variantOf({ type: v.literal("local"), path: v.nullish(nonEmptyString), inline_max_bytes: v.nullish(inlineMaxBytes) }),
      variantOf({ type: v.literal("database"), max_bytes: v.nullish(integer(1)), inline_max_bytes: v.nullish(localOnly) }),
      variantOf({
        type: v.literal("s3"),
        inline_max_bytes: v.nullish(localOnly),
        bucket: nonEmptyString,
        prefix: v.nullish(string),
        endpoint: v.nullish(nonEmptyString),
        region: v.nullish(nonEmptyString),
        force_path_style: v.nullish(boolean),
      }),
    ],
    'a type of "local", "database" or "s3"',
  ),
  v.transform((o): OutputStoreSettings => {
    if (o.type === "local") {
      return { type: "local", ...(o.path ? { path: o.path } : {}), ...(o.inline_max_bytes != null ? { inlineMaxBytes: o.inline_max_bytes } : {}) };
    }
    if (o.type === "database") return { type: "database", maxBytes: o.max_bytes ?? DEFAULT_DATABASE_OUTPUT_BYTES };
    return {
      type: "s3",
      bucket: o.bucket,
      prefix: o.prefix ?? "",
      endpoint: o.endpoint ?? null,
      region: o.region ?? "us-east-1",
      forcePathStyle: o.force_path_style ?? o.endpoint != null,
    };
  }),
);

/** Mage's SettingsConfig; keys kiln does not know are kept as written. */
const scheduleSettings = v.pipe(
  looseMapping({
    skip_if_previous_running: v.nullish(boolean),
    allow_blocks_to_fail: v.nullish(boolean),
    create_initial_pipeline_run: v.nullish(boolean),
    landing_time_enabled: v.nullish(boolean),
    pipeline_run_limit: v.nullish(integer(1)),
    timeout: v.nullish(positiveNumber),
    timeout_status: v.nullish(oneOf(["failed", "cancelled"])),
  }),
  v.transform((s): ScheduleSettings & JsonObject => {
    const {
      skip_if_previous_running,
      allow_blocks_to_fail,
      create_initial_pipeline_run,
      landing_time_enabled,
      pipeline_run_limit,
      timeout,
      timeout_status,
      ...unknown
    } = s;
    return {
      ...unknown,
      ...compact({
        skipIfPreviousRunning: skip_if_previous_running,
        allowBlocksToFail: allow_blocks_to_fail,
        createInitialPipelineRun: create_initial_pipeline_run,
        landingTimeEnabled: landing_time_enabled,
        pipelineRunLimit: pipeline_run_limit,
        timeout,
        timeoutStatus: timeout_status,
      }),
    };
  }),
);

/** A block's `configuration`; other keys (Mage has many) are kept for the block to read. */
const blockConfiguration = v.pipe(
  looseMapping({
    dynamic: v.nullish(boolean),
    reduce_output: v.nullish(boolean),
    poll_interval: v.nullish(positiveNumber),
  }),
  v.transform((c): BlockConfiguration & JsonObject => {
    const { dynamic, reduce_output, poll_interval, ...unknown } = c;
    return { ...unknown, ...compact({ dynamic, reduceOutput: reduce_output, pollInterval: poll_interval }) };
  }),
);

const blockUuid = v.pipe(
  v.string("a block uuid"),
  v.minLength(1, "a non-empty block uuid"),
  // ':' is reserved for the items of a dynamic block (`load:3`).
  v.check((uuid) => !uuid.includes(":"), "a block uuid without ':' (':' names the items of a dynamic block)"),
  // '/' is a Mage nested folder (`cleaning/fill_missing`); it must stay inside the block-type folder.
  v.check(
    (uuid) => uuid.split("/").every((part) => part !== "" && part !== "." && part !== ".." && !part.includes("\\")),
    "a block uuid whose '/'-separated parts are folder names (no empty part, '.', '..' or '\\')",
  ),
);
const blockUuidList = v.array(v.string("a block uuid"), "a list of block uuids");

const block = v.pipe(
  mapping(
    {
      uuid: blockUuid,
      name: v.nullish(nameString),
      type: oneOf(BLOCK_TYPES),
      upstream_blocks: v.nullish(blockUuidList, () => []),
      // Mage writes downstream_blocks; kiln derives them, but a malformed list is still a mistake.
      downstream_blocks: v.nullish(blockUuidList),
      executor_type: v.nullish(executorType),
      executor_config: v.nullish(jsonObject, () => ({})),
      retry_config: v.nullish(retryConfig, () => ({})),
      timeout: v.nullish(positiveNumber),
      configuration: v.nullish(blockConfiguration, () => ({})),
    },
    "a block (an object with uuid and type)",
  ),
  v.transform(
    (b): BlockSpec => ({
      uuid: b.uuid,
      name: b.name ?? b.uuid,
      type: b.type,
      upstreamBlocks: b.upstream_blocks,
      executorType: b.executor_type ?? null,
      executorConfig: b.executor_config,
      retryConfig: b.retry_config,
      timeout: b.timeout ?? null,
      configuration: b.configuration,
    }),
  ),
);

/** An entry of Mage's `callbacks:` or `conditionals:` list. */
function addon(kind: AddonKind) {
  return v.pipe(
    mapping(
      {
        uuid: blockUuid,
        name: v.nullish(string),
        type: v.nullish(v.literal(kind, `type: ${kind} (or no type)`)),
        upstream_blocks: v.pipe(
          blockUuidList,
          v.minLength(1, `a list of the blocks this ${kind} is attached to`),
        ),
      },
      `a ${kind} block (an object with uuid and upstream_blocks)`,
    ),
    v.transform((a): AddonSpec => ({ uuid: a.uuid, name: a.name ?? a.uuid, kind, parents: a.upstream_blocks })),
  );
}

// ---------------------------------------------------------------------------------------------
// Files

/** kiln.yaml. */
export const projectSettingsSchema = v.pipe(
  mapping({
    database_url: v.nullish(nonEmptyString),
    executor_type: v.nullish(executorType, "local"),
    executor_config: v.nullish(jsonObject, () => ({})),
    retry_config: v.nullish(retryConfig, () => ({})),
    concurrency_config: v.nullish(concurrencyConfig, () => ({})),
    variables: v.nullish(jsonObject, () => ({})),
    plugins: v.nullish(v.array(nonEmptyString, "a list of package names"), () => []),
    notification_config: v.nullish(jsonObject, () => ({})),
    executors: v.nullish(v.record(nonEmptyString, jsonObject, "an object of executor type: its config"), () => ({})),
    output_store: v.nullish(outputStore, (): OutputStoreSettings => ({ type: "local" })),
    python: v.nullish(nonEmptyString),
  }),
  v.transform(
    (p): ProjectSettings => ({
      databaseUrl: p.database_url ?? null,
      ...(p.python ? { python: p.python } : {}),
      executorType: p.executor_type,
      executorConfig: p.executor_config,
      retryConfig: p.retry_config,
      concurrencyConfig: p.concurrency_config,
      variables: p.variables,
      plugins: p.plugins,
      notificationConfig: p.notification_config,
      executors: p.executors,
      outputStore: p.output_store,
    }),
  ),
);

/** pipelines/<uuid>/metadata.yaml. */
export const pipelineSchema = v.pipe(
  mapping({
    uuid: v.nullish(nonEmptyString),
    name: v.nullish(nameString),
    description: v.nullish(string),
    executor_type: v.nullish(executorType),
    executor_config: v.nullish(jsonObject, () => ({})),
    retry_config: v.nullish(retryConfig, () => ({})),
    concurrency_config: v.nullish(concurrencyConfig, () => ({})),
    variables: v.nullish(jsonObject, () => ({})),
    settings: v.nullish(scheduleSettings, () => ({})),
    notification_config: v.nullish(jsonObject, () => ({})),
    type: v.nullish(string),
    tags: v.nullish(stringList),
    blocks: v.array(block, "a list of blocks"),
    callbacks: v.nullish(v.array(addon("callback"), "a list of callback blocks"), () => []),
    conditionals: v.nullish(v.array(addon("conditional"), "a list of conditional blocks"), () => []),
  }),
  v.transform(
    (p): PipelineSpec => ({
      uuid: p.uuid ?? null,
      name: p.name ?? null,
      description: p.description ?? null,
      blocks: p.blocks,
      executorType: p.executor_type ?? null,
      executorConfig: p.executor_config,
      retryConfig: p.retry_config,
      concurrencyConfig: p.concurrency_config,
      variables: p.variables,
      settings: p.settings,
      notificationConfig: p.notification_config,
      type: p.type ?? null,
      ...(p.tags && p.tags.length > 0 ? { tags: p.tags } : {}),
      callbacks: p.callbacks,
      conditionals: p.conditionals,
    }),
  ),
);

/** An event pattern (event_pattern), or Mage's event matchers (event_matchers) made into one. */
function eventPatternOf(read: (value: unknown) => JsonObject, expected: string) {
  return v.pipe(
    v.unknown(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      try {
        return read(dataset.value);
      } catch (error) {
        if (!(error instanceof EventPatternError)) throw error;
        addIssue({ message: `${expected} (${error.message})` });
        return NEVER;
      }
    }),
  );
}

const eventPattern = eventPatternOf(checkEventPattern, "an event pattern");
const eventMatchers = eventPatternOf(
  (value) => (Array.isArray(value) ? patternOfMatchers(value) : patternOfMatchers([value])),
  "a list of event matchers with a pattern each",
);

const trigger = v.pipe(
  mapping(
    {
      name: nameString,
      schedule_type: oneOf(SCHEDULE_TYPES),
      // Cron strings are checked by the scheduler, which owns the cron parser.
      schedule_interval: v.nullish(nonEmptyString),
      start_time: v.nullish(dateTime),
      timezone: v.nullish(timeZone, "UTC"),
      status: v.nullish(oneOf(SCHEDULE_STATUSES), "inactive"),
      variables: v.nullish(jsonObject, () => ({})),
      sla: v.nullish(positiveNumber),
      settings: v.nullish(scheduleSettings, () => ({})),
      description: v.nullish(string),
      token: v.nullish(nonEmptyString),
      envs: v.nullish(stringList, () => []),
      last_enabled_at: v.nullish(dateTime),
      tags: v.nullish(stringList, () => []),
      event_pattern: v.nullish(eventPattern),
      event_matchers: v.nullish(eventMatchers),
    },
    "a trigger (an object with name and schedule_type)",
  ),
  v.check((t) => !(t.event_pattern && t.event_matchers), "event_pattern or event_matchers, not both"),
  v.check((t) => t.schedule_type === "event" || (!t.event_pattern && !t.event_matchers), "an event pattern only on a trigger with schedule_type: event"),
  v.transform(
    (t): TriggerConfig => ({
      name: t.name,
      scheduleType: t.schedule_type,
      scheduleInterval: t.schedule_interval ?? null,
      startTime: t.start_time ?? null,
      timezone: t.timezone,
      status: t.status,
      variables: t.variables,
      sla: t.sla ?? null,
      settings: t.settings,
      description: t.description ?? null,
      token: t.token ?? null,
      ...(t.event_pattern ? { eventPattern: t.event_pattern } : t.event_matchers ? { eventPattern: t.event_matchers } : {}),
      envs: t.envs,
      lastEnabledAt: t.last_enabled_at ?? null,
      tags: t.tags,
    }),
  ),
);

/** pipelines/<uuid>/triggers.yaml: `triggers:` and its list, which may be empty. */
export const triggersSchema = v.pipe(
  mapping({ triggers: v.nullish(v.array(trigger, "a list of triggers"), () => []) }),
  v.transform((f): TriggerConfig[] => f.triggers),
);
