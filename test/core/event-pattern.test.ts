/** Event patterns: EventBridge-style matching (properties and the S3 / EventBridge shapes), and checking patterns. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type JsonObject } from "@kiln/core";
import { checkEventPattern, EventPatternError, matchesEvent, patternOfMatchers } from "@kiln/core/events";
import { loadProject, ProjectLoadError, type Project } from "@kiln/core/project";
import { folderSource } from "@kiln/node";
import { rmSync } from "node:fs";
import { writeTempProject } from "../helpers/fixtures.ts";

// small domains, so that generated patterns and events often share keys and values
const key = fc.constantFrom("a", "b", "c", "source", "detail", "Records");
const scalar = fc.oneof(fc.constantFrom("raw/x.csv", "raw/", "out/y.json", "", "a"), fc.string({ maxLength: 4 }), fc.integer({ min: -3, max: 3 }), fc.boolean(), fc.constant(null));
const { value: jsonValue } = fc.letrec<{ value: unknown; object: JsonObject }>((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, tie("object"), fc.array(fc.oneof(scalar, tie("object")), { maxLength: 3 })),
  object: fc.dictionary(key, tie("value"), { maxKeys: 4 }) as fc.Arbitrary<JsonObject>,
}));
const event = fc.dictionary(key, jsonValue, { maxKeys: 5 }) as fc.Arbitrary<JsonObject>;
const option = fc.oneof(
  scalar,
  fc.constantFrom("raw/", "out/", "", "a").map((prefix) => ({ prefix })),
  fc.constantFrom(".csv", ".json", "").map((suffix) => ({ suffix })),
);

const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === "object" && !Array.isArray(v);

/** The pattern an event always matches: each scalar as a one-item list, objects recursed, lists as "one of" their items. */
function patternOf(e: JsonObject): JsonObject {
  const pattern: JsonObject = {};
  for (const [k, v] of Object.entries(e)) {
    if (isObject(v)) pattern[k] = patternOf(v);
    else if (!Array.isArray(v)) pattern[k] = [v];
    else {
      const scalars = v.filter((item) => !isObject(item) && !Array.isArray(item));
      const firstObject = v.find(isObject);
      if (scalars.length > 0) pattern[k] = scalars;
      else if (firstObject) pattern[k] = patternOf(firstObject);
    }
  }
  return pattern;
}

/** The oracle for one list item against one scalar. */
function optionMatches(o: unknown, v: unknown): boolean {
  if (isObject(o) && "prefix" in o) return typeof v === "string" && v.startsWith(String(o.prefix));
  if (isObject(o) && "suffix" in o) return typeof v === "string" && v.endsWith(String(o.suffix));
  return o === v;
}

describe("matching, as properties", () => {
  test("an event matches the pattern made from itself (and that pattern is valid)", () => {
    fc.assert(
      fc.property(event, (e) => {
        const pattern = checkEventPattern(patternOf(e));
        expect(matchesEvent(pattern, e)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  test("a list matches iff one of its items does (scalars exactly, prefix and suffix filters)", () => {
    fc.assert(
      fc.property(fc.array(option, { minLength: 1, maxLength: 4 }), scalar, (options, v) => {
        const whole = matchesEvent({ a: options }, { a: v });
        expect(whole).toBe(options.some((o) => matchesEvent({ a: [o] }, { a: v })));
        expect(whole).toBe(options.some((o) => optionMatches(o, v)));
      }),
      { numRuns: 1000 },
    );
  });

  test("a list value in the event matches when one of its items does", () => {
    fc.assert(
      fc.property(fc.array(option, { minLength: 1, maxLength: 3 }), fc.array(scalar, { maxLength: 3 }), (options, values) => {
        expect(matchesEvent({ a: options }, { a: values })).toBe(values.some((v) => options.some((o) => optionMatches(o, v))));
      }),
      { numRuns: 500 },
    );
  });

  test("an object recurses: {k: p} matches {k: e} iff p matches e", () => {
    fc.assert(
      fc.property(event, event, (e, other) => {
        const p = patternOf(other);
        expect(matchesEvent({ detail: p }, { detail: e })).toBe(matchesEvent(p, e));
      }),
      { numRuns: 500 },
    );
  });

  test("a pattern key missing from the event never matches", () => {
    fc.assert(
      fc.property(event, key, fc.oneof(fc.array(option, { minLength: 1, maxLength: 3 }), scalar, event.map(patternOf)), (e, k, expected) => {
        const without = { ...e };
        delete without[k];
        expect(matchesEvent({ [k]: expected }, without)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  test("keys of the event the pattern does not name never change the outcome", () => {
    fc.assert(
      fc.property(event, event, fc.string({ minLength: 1, maxLength: 3 }), jsonValue, (e, other, extraKey, extraValue) => {
        const p = patternOf(other);
        fc.pre(!(`x_${extraKey}` in p));
        expect(matchesEvent(p, { ...e, [`x_${extraKey}`]: extraValue })).toBe(matchesEvent(p, e));
      }),
      { numRuns: 500 },
    );
  });

  test("$or matches iff one of its patterns does", () => {
    fc.assert(
      fc.property(event, event, event, (e, x, y) => {
        const [p, q] = [patternOf(x), patternOf(y)];
        expect(matchesEvent({ $or: [p, q] }, e)).toBe(matchesEvent(p, e) || matchesEvent(q, e));
      }),
      { numRuns: 500 },
    );
  });
});

const s3Event = (bucket: string, objectKey: string, eventName = "ObjectCreated:Put"): JsonObject => ({
  Records: [
    {
      eventVersion: "2.1",
      eventSource: "aws:s3",
      awsRegion: "us-east-1",
      eventTime: "2024-01-15T12:00:00.000Z",
      eventName,
      s3: {
        s3SchemaVersion: "1.0",
        configurationId: "uploads",
        bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
        object: { key: objectKey, size: 1024, eTag: "d41d8cd98f00b204e9800998ecf8427e" },
      },
    },
  ],
});

const eventBridgeEvent = (bucket: string, objectKey: string, size = 1024): JsonObject => ({
  version: "0",
  id: "17793124-05d4-b198-2fde-7ededc63b103",
  "detail-type": "Object Created",
  source: "aws.s3",
  account: "111122223333",
  time: "2024-01-15T12:00:00Z",
  region: "us-east-1",
  resources: [`arn:aws:s3:::${bucket}`],
  detail: { version: "0", bucket: { name: bucket }, object: { key: objectKey, size }, reason: "PutObject" },
});

describe("matching, by example", () => {
  test("S3 ObjectCreated notifications: a pattern addresses the records, any record matching", () => {
    const pattern = { Records: { eventName: [{ prefix: "ObjectCreated:" }], s3: { bucket: { name: ["my-data-bucket"] }, object: { key: [{ prefix: "raw/" }] } } } };
    expect(matchesEvent(pattern, s3Event("my-data-bucket", "raw/2024/01/15/orders.csv"))).toBe(true);
    expect(matchesEvent(pattern, s3Event("my-data-bucket", "archive/orders.csv"))).toBe(false);
    expect(matchesEvent(pattern, s3Event("other-bucket", "raw/orders.csv"))).toBe(false);
    expect(matchesEvent(pattern, s3Event("my-data-bucket", "raw/orders.csv", "ObjectRemoved:Delete"))).toBe(false);
    // two records: the second one matches
    const two = s3Event("other-bucket", "raw/a.csv");
    (two.Records as JsonObject[]).push(...(s3Event("my-data-bucket", "raw/b.csv").Records as JsonObject[]));
    expect(matchesEvent(pattern, two)).toBe(true);
    // one record must satisfy the whole sub-pattern: bucket from one record and key from another is no match
    const mixed = s3Event("my-data-bucket", "archive/a.csv");
    (mixed.Records as JsonObject[]).push(...(s3Event("other-bucket", "raw/b.csv").Records as JsonObject[]));
    expect(matchesEvent(pattern, mixed)).toBe(false);
  });

  test("EventBridge events: source, detail-type and detail.*", () => {
    const pattern = { source: ["aws.s3"], "detail-type": ["Object Created"], detail: { bucket: { name: ["my-data-bucket"] }, object: { key: [{ suffix: ".csv" }] } } };
    expect(matchesEvent(pattern, eventBridgeEvent("my-data-bucket", "raw/orders.csv"))).toBe(true);
    expect(matchesEvent(pattern, eventBridgeEvent("my-data-bucket", "raw/orders.json"))).toBe(false);
    expect(matchesEvent({ ...pattern, source: ["aws.ec2"] }, eventBridgeEvent("my-data-bucket", "raw/orders.csv"))).toBe(false);
    // Mage's own example pattern
    expect(matchesEvent({ source: ["aws.s3"], detail: { bucket: { name: ["b"] } } }, eventBridgeEvent("b", "k"))).toBe(true);
    // an array in the event (resources) matches when one of its items does
    expect(matchesEvent({ resources: ["arn:aws:s3:::b"] }, eventBridgeEvent("b", "k"))).toBe(true);
  });

  test("numeric ranges, anything-but, exists and exact scalars", () => {
    const e = eventBridgeEvent("b", "raw/x.csv", 2048);
    expect(matchesEvent({ detail: { object: { size: [{ numeric: [">", 1024, "<=", 4096] }] } } }, e)).toBe(true);
    expect(matchesEvent({ detail: { object: { size: [{ numeric: ["<", 1024] }] } } }, e)).toBe(false);
    expect(matchesEvent({ detail: { object: { size: [{ numeric: [">", 0] }] } } }, { detail: { object: { size: "2048" } } })).toBe(false);
    expect(matchesEvent({ detail: { reason: [{ "anything-but": ["DeleteObject", "CopyObject"] }] } }, e)).toBe(true);
    expect(matchesEvent({ detail: { reason: [{ "anything-but": "PutObject" }] } }, e)).toBe(false);
    expect(matchesEvent({ detail: { object: { key: [{ "anything-but": { prefix: "tmp/" } }] } } }, e)).toBe(true);
    expect(matchesEvent({ detail: { "deletion-type": [{ exists: false }] } }, e)).toBe(true);
    expect(matchesEvent({ detail: { reason: [{ exists: false }] } }, e)).toBe(false);
    expect(matchesEvent({ detail: { reason: [{ exists: true }] } }, e)).toBe(true);
    expect(matchesEvent({ source: "aws.s3", detail: { object: { size: 2048 } } }, e)).toBe(true);
    expect(matchesEvent({ source: "aws" }, e)).toBe(false);
    // null is a value like any other; a key holding null is present
    expect(matchesEvent({ a: [null] }, { a: null })).toBe(true);
    expect(matchesEvent({ a: [null] }, {})).toBe(false);
    // {} matches any object, and nothing else
    expect(matchesEvent({}, { anything: 1 })).toBe(true);
    expect(matchesEvent({ detail: {} }, { detail: "text" })).toBe(false);
  });
});

describe("checking patterns", () => {
  test("a valid pattern is returned as is", () => {
    const pattern = { source: ["aws.s3"], detail: { size: [{ numeric: [">=", 0] }], key: [{ prefix: "raw/" }, "exact"] }, $or: [{ a: 1 }, { b: [true] }] };
    expect(checkEventPattern(pattern)).toBe(pattern);
  });

  test("each mistake is named by its place", () => {
    const cases: Array<[unknown, string]> = [
      [[1], ""],
      ["text", ""],
      [{ a: [] }, "a"],
      [{ a: [[1]] }, "a[0]"],
      [{ detail: { key: [{ prefix: 1 }] } }, "detail.key[0].prefix"],
      [{ a: [{ wildcard: "*.csv" }] }, "a[0]"],
      [{ a: [{ prefix: "x", suffix: "y" }] }, "a[0]"],
      [{ a: [{ numeric: [">", "1"] }] }, "a[0].numeric"],
      [{ a: [{ numeric: ["~", 1] }] }, "a[0].numeric"],
      [{ a: [{ exists: "yes" }] }, "a[0].exists"],
      [{ a: [{ "anything-but": [] }] }, "a[0].anything-but"],
      [{ $or: [] }, "$or"],
      [{ $or: [{ a: [] }] }, "$or[0].a"],
    ];
    for (const [pattern, path] of cases) {
      let caught: unknown = null;
      try {
        checkEventPattern(pattern);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(EventPatternError);
      expect([pattern, (caught as EventPatternError).path]).toEqual([pattern, path]);
    }
    let deep: JsonObject = { a: [1] };
    for (let i = 0; i < 40; i++) deep = { a: deep };
    expect(() => checkEventPattern(deep)).toThrow(/deeper than/);
  });

  test("Mage's event matchers become one pattern: the only one, or $or of several", () => {
    const one = { event_type: "aws_event", name: "uploads", pattern: { source: ["aws.s3"] } };
    const two = { event_type: "aws_event", name: "ec2", pattern: { source: ["aws.ec2"] } };
    expect(patternOfMatchers([one])).toEqual({ source: ["aws.s3"] });
    const both = patternOfMatchers([one, two]);
    expect(both).toEqual({ $or: [{ source: ["aws.s3"] }, { source: ["aws.ec2"] }] });
    expect(matchesEvent(both, { source: "aws.ec2" })).toBe(true);
    expect(matchesEvent(both, { source: "aws.rds" })).toBe(false);
    expect(() => patternOfMatchers([{ name: "no pattern" }])).toThrow(/\[0\]/);
    expect(() => patternOfMatchers([one, { pattern: { a: [] } }])).toThrow(/\[1\]\.pattern\.a/);
    expect(() => patternOfMatchers([])).toThrow(/at least one/);
  });
});

describe("event triggers in triggers.yaml", () => {
  const withTriggers = (triggers: string): Record<string, string> => ({
    "kiln.yaml": "",
    "pipelines/uploads/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n",
    "data_loaders/load.js": "export default () => 1;\n",
    "pipelines/uploads/triggers.yaml": triggers,
  });
  async function load(triggers: string): Promise<Project> {
    const root = writeTempProject(withTriggers(triggers));
    try {
      return await loadProject(folderSource(root));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  async function loadError(triggers: string): Promise<ProjectLoadError> {
    const error = await load(triggers).then(
      () => null,
      (e: unknown) => e,
    );
    if (!(error instanceof ProjectLoadError)) throw new Error(`expected a ProjectLoadError, got ${String(error)}`);
    return error;
  }

  test("event_pattern, or Mage's event_matchers, becomes the trigger's pattern", async () => {
    const project = await load(`triggers:
  - name: s3_file_upload_trigger
    schedule_type: event
    status: active
    event_pattern:
      Records:
        eventName: [{prefix: "ObjectCreated:"}]
        s3:
          bucket: {name: [my-data-bucket]}
  - name: from_mage
    schedule_type: event
    event_matchers:
      - event_type: aws_event
        name: s3_rule
        pattern: {source: [aws.s3]}
      - event_type: aws_event
        name: ec2_rule
        pattern: {source: [aws.ec2]}
  - name: daily
    schedule_type: time
    schedule_interval: "@daily"
`);
    const [upload, mage, daily] = project.pipelines.get("uploads")?.triggers ?? [];
    expect(upload?.eventPattern).toEqual({ Records: { eventName: [{ prefix: "ObjectCreated:" }], s3: { bucket: { name: ["my-data-bucket"] } } } });
    expect(mage?.eventPattern).toEqual({ $or: [{ source: ["aws.s3"] }, { source: ["aws.ec2"] }] });
    expect(daily && "eventPattern" in daily).toBe(false);
  });

  test("a bad pattern, both spellings, or a pattern on a time trigger is a load error naming the trigger", async () => {
    const bad = await loadError("triggers:\n  - name: e\n    schedule_type: event\n    event_pattern: {detail: {key: [{prefix: 3}]}}\n");
    expect(bad.field).toBe("triggers[0].event_pattern");
    expect(bad.message).toContain("detail.key[0].prefix: expected a string");
    const both = await loadError("triggers:\n  - name: e\n    schedule_type: event\n    event_pattern: {a: [1]}\n    event_matchers: [{pattern: {a: [1]}}]\n");
    expect(both.message).toContain("not both");
    const onTime = await loadError("triggers:\n  - name: t\n    schedule_type: time\n    schedule_interval: '@daily'\n    event_pattern: {a: [1]}\n");
    expect(onTime.message).toContain("schedule_type: event");
  });
});
