/**
 * The output store backends: one conformance suite run against the local folder, the database
 * (a real libSQL file) and S3 (a fake on 127.0.0.1 that checks SigV4), then what is particular
 * to each: the database's size limit, S3's keys, errors and credentials.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock, OutputMissingError, outputPath, type OutputStore } from "@kiln/core";
import { databaseOutputStore, openOutputStore, OutputStoreSettingsError, outputStoreEnv, OutputTooLargeError, s3CredentialsFromEnv, s3ObjectUrl, S3OutputError, s3OutputStore, type S3Credentials, type S3OutputStoreSettings } from "@kiln/core/output-store";
import { Store, type SqlClient } from "@kiln/core/store";
import { fileOutputStore, openDatabase, runtimeName } from "@kiln/node";
import { startFakeS3, type FakeS3 } from "../helpers/fake-s3.ts";

const CREDENTIALS: S3Credentials = { accessKeyId: "AKIAKILNTEST", secretAccessKey: "kiln-test-secret/xyz+123", source: "KILN_S3_ACCESS_KEY_ID" };
const BUCKET = "kiln-outputs";

let dir: string;
let client: SqlClient;
let s3: FakeS3;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-outputs-"));
  client = await openDatabase(`file:${join(dir, "kiln.db")}`);
  await Store.open(client);
  s3 = await startFakeS3({ accessKeyId: CREDENTIALS.accessKeyId, secretAccessKey: CREDENTIALS.secretAccessKey, buckets: [BUCKET] });
});

afterAll(async () => {
  await s3.stop();
  client.close();
  rmSync(dir, { recursive: true, force: true });
});

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function s3Settings(overrides: Partial<S3OutputStoreSettings> = {}): S3OutputStoreSettings {
  return { type: "s3", bucket: BUCKET, prefix: "runs/", endpoint: s3.endpoint, region: "us-east-1", forcePathStyle: true, ...overrides };
}

const BACKENDS: Array<[string, () => OutputStore]> = [
  ["local folder", () => fileOutputStore(join(dir, "project"))],
  ["database", () => databaseOutputStore(client, { maxBytes: 1024 * 1024 })],
  ["s3", () => s3OutputStore(s3Settings(), CREDENTIALS, { retries: 0 })],
];

for (const [name, make] of BACKENDS) describe(`output store conformance: ${name}`, () => {
  // each backend gets its own pipeline, so the shared database and bucket keep them apart
  const pipeline = `conformance_${name.replace(/\W/g, "_")}`;
  const partition = "manual/20240101T000000_7";

  test("round-trips JSON values: objects, arrays, strings, numbers, booleans, null and nested", async () => {
    const store = make();
    const values: Record<string, unknown> = {
      object: { a: 1, b: "two", c: [true, false, null] },
      list: [1, 2.5, -3, "x", { deep: { deeper: [{ deepest: "é ✓ 漢字" }] } }],
      text: "line one\nline \"two\"",
      number: 12345.678,
      flag: false,
      nothing: null,
    };
    for (const [block, value] of Object.entries(values)) await store.write(pipeline, partition, block, value);
    for (const [block, value] of Object.entries(values)) expect(await store.read(pipeline, partition, block)).toEqual(value);
  });

  test("a block that returns nothing (undefined) reads back as null", async () => {
    const store = make();
    await store.write(pipeline, partition, "returns_nothing", undefined);
    expect(await store.read(pipeline, partition, "returns_nothing")).toBeNull();
  });

  test("a dynamic child's run (block uuid with :index) is stored apart from its parent", async () => {
    const store = make();
    await store.write(pipeline, partition, "fan", ["a", "b"]);
    await store.write(pipeline, partition, "fan:1", "b");
    expect(await store.read(pipeline, partition, "fan")).toEqual(["a", "b"]);
    expect(await store.read(pipeline, partition, "fan:1")).toBe("b");
  });

  test("reading an output never written throws OutputMissingError", async () => {
    const store = make();
    const error = await store.read(pipeline, partition, "never_ran").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputMissingError);
    expect((error as OutputMissingError).message).toContain("never_ran");
  });

  test("the same block in another partition or pipeline is another output", async () => {
    const store = make();
    await store.write(pipeline, partition, "load", { run: 1 });
    await store.write(pipeline, "manual/20240101T000000_8", "load", { run: 2 });
    await store.write(`${pipeline}_other`, partition, "load", { run: 3 });
    expect(await store.read(pipeline, partition, "load")).toEqual({ run: 1 });
    expect(await store.read(pipeline, "manual/20240101T000000_8", "load")).toEqual({ run: 2 });
    expect(await store.read(`${pipeline}_other`, partition, "load")).toEqual({ run: 3 });
    await expect(store.read(pipeline, "manual/20240101T000000_9", "load")).rejects.toBeInstanceOf(OutputMissingError);
  });

  test("a retried block run overwrites its earlier attempt's output", async () => {
    const store = make();
    await store.write(pipeline, partition, "retried", { attempt: 1, rows: [1, 2, 3] });
    await store.write(pipeline, partition, "retried", { attempt: 2 });
    expect(await store.read(pipeline, partition, "retried")).toEqual({ attempt: 2 });
    // a second store over the same backing (another process) sees the overwrite too
    expect(await make().read(pipeline, partition, "retried")).toEqual({ attempt: 2 });
  });
});

describe("the database and s3 stores refuse an output JSON cannot hold", () => {
  for (const [name, make] of BACKENDS.filter(([name]) => name !== "local folder")) {
    test(`${name}: a function is refused naming the block, and nothing is stored`, async () => {
      const store = make();
      await expect(store.write("non_json", "p", "returns_fn", () => 1)).rejects.toThrow('block "returns_fn" of pipeline "non_json" returned a function');
      await expect(store.read("non_json", "p", "returns_fn")).rejects.toBeInstanceOf(OutputMissingError);
    });
  }
});

describe("database output store", () => {
  test("keeps outputs in block_outputs, one row per block run, updated in place on retry", async () => {
    const store = databaseOutputStore(client, { maxBytes: 1024, clock: new FakeClock(1_000) });
    await store.write("db_rows", "p1", "load", { n: 1 });
    const later = databaseOutputStore(client, { maxBytes: 1024, clock: new FakeClock(2_000) });
    await later.write("db_rows", "p1", "load", { n: 22 });
    const rs = await client.execute({ sql: "SELECT value, size_bytes, created_at, updated_at FROM block_outputs WHERE pipeline_uuid = ?", args: ["db_rows"] });
    expect(rs.rows.map((r) => ({ value: r.value, size_bytes: r.size_bytes, created_at: r.created_at, updated_at: r.updated_at }))).toEqual([{ value: '{"n":22}', size_bytes: 8, created_at: 1_000, updated_at: 2_000 }]);
  });

  test("refuses an output over max_bytes, naming the block, its size and output_store.max_bytes; nothing is stored", async () => {
    const store = databaseOutputStore(client, { maxBytes: 100 });
    const big = "x".repeat(200);
    const error = await store.write("db_limit", "manual/20240102T000000_1", "huge_block", big).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputTooLargeError);
    const message = (error as Error).message;
    expect(message).toContain('block "huge_block"');
    expect(message).toContain("202 bytes"); // the JSON string: 200 characters and its quotes
    expect(message).toContain("output_store.max_bytes (100)");
    await expect(store.read("db_limit", "manual/20240102T000000_1", "huge_block")).rejects.toBeInstanceOf(OutputMissingError);
  });

  test("the limit counts UTF-8 bytes, not characters, and an output of exactly max_bytes fits", async () => {
    const store = databaseOutputStore(client, { maxBytes: 8 });
    await store.write("db_limit", "p", "exact", "ééé"); // "ééé" with quotes: 2 + 3 * 2 = 8 bytes
    expect(await store.read("db_limit", "p", "exact")).toBe("ééé");
    await expect(store.write("db_limit", "p", "over", "éééé")).rejects.toBeInstanceOf(OutputTooLargeError);
  });

  test("a too-large retry leaves the earlier attempt's output as it was", async () => {
    const store = databaseOutputStore(client, { maxBytes: 20 });
    await store.write("db_limit", "p", "shrinking", [1, 2]);
    await expect(store.write("db_limit", "p", "shrinking", "y".repeat(50))).rejects.toBeInstanceOf(OutputTooLargeError);
    expect(await store.read("db_limit", "p", "shrinking")).toEqual([1, 2]);
  });
});

describe("s3 output store against the fake", () => {
  test("PUT and GET path-style at <endpoint>/<bucket>/<prefix><outputPath>, signed, JSON, payload hash", async () => {
    const store = s3OutputStore(s3Settings({ prefix: "team-a/" }), CREDENTIALS, { retries: 0 });
    const from = s3.requests.length;
    await store.write("shapes", "manual/20240103T000000_4", "transform:2", { ok: true });
    expect(await store.read("shapes", "manual/20240103T000000_4", "transform:2")).toEqual({ ok: true });
    const [put, get] = s3.requests.slice(from);
    const key = `team-a/${outputPath("shapes", "manual/20240103T000000_4", "transform:2")}`;
    expect(put).toMatchObject({ method: "PUT", style: "path", bucket: BUCKET, key, status: 200, body: '{"ok":true}' });
    // ":" of a dynamic child's uuid travels percent-encoded, and the signature covers that form
    expect(put?.path).toBe(`/${BUCKET}/team-a/.variables/pipelines/shapes/manual/20240103T000000_4/transform%3A2/output_0`);
    expect(put?.headers["content-type"]).toBe("application/json");
    expect(put?.headers["x-amz-content-sha256"]).toBe(sha256Hex('{"ok":true}'));
    expect(put?.headers.authorization).toStartWith(`AWS4-HMAC-SHA256 Credential=${CREDENTIALS.accessKeyId}/`);
    expect(put?.signedHeaders).toEqual(["host", "x-amz-content-sha256", "x-amz-date"]);
    expect(get).toMatchObject({ method: "GET", key, status: 200 });
    expect(s3.objects.get(`${BUCKET}/${key}`)?.contentType).toBe("application/json");
  });

  // Bun resolves <bucket>.localhost to loopback; Deno and Node ask DNS, which does not know it
  test.skipIf(runtimeName() !== "bun")("virtual-host style (force_path_style: false) puts the bucket in the host name", async () => {
    const store = s3OutputStore(s3Settings({ endpoint: s3.virtualHostEndpoint, forcePathStyle: false, prefix: "" }), CREDENTIALS, { retries: 0 });
    const from = s3.requests.length;
    await store.write("vhost", "p", "load", [1, 2, 3]);
    expect(await store.read("vhost", "p", "load")).toEqual([1, 2, 3]);
    const [put] = s3.requests.slice(from);
    expect(put).toMatchObject({ style: "virtual-host", bucket: BUCKET, key: outputPath("vhost", "p", "load"), status: 200 });
    expect(put?.headers.host).toBe(`${BUCKET}.localhost:${s3.port}`);
  });

  test("session tokens are sent and signed as X-Amz-Security-Token", async () => {
    const withToken = await startFakeS3({ accessKeyId: "ASIATEMP", secretAccessKey: "temp-secret", sessionToken: "the-session-token", buckets: [BUCKET] });
    try {
      const settings = s3Settings({ endpoint: withToken.endpoint });
      await s3OutputStore(settings, { accessKeyId: "ASIATEMP", secretAccessKey: "temp-secret", sessionToken: "the-session-token", source: "AWS_ACCESS_KEY_ID" }, { retries: 0 }).write("tok", "p", "b", 1);
      expect(withToken.requests[0]?.signedHeaders).toContain("x-amz-security-token");
      const noToken = s3OutputStore(settings, { accessKeyId: "ASIATEMP", secretAccessKey: "temp-secret", source: "AWS_ACCESS_KEY_ID" }, { retries: 0 });
      const error = await noToken.read("tok", "p", "b").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(S3OutputError);
      expect((error as S3OutputError).code).toBe("InvalidToken");
      expect((error as Error).message).toContain("AWS_SESSION_TOKEN");
    } finally {
      await withToken.stop();
    }
  });

  test("a wrong secret key: the fake rejects the signature (403 SignatureDoesNotMatch) and the error says where and what to check, not the secret", async () => {
    const wrongSecret = "not-the-right-secret-key";
    const store = s3OutputStore(s3Settings(), { ...CREDENTIALS, secretAccessKey: wrongSecret }, { retries: 0 });
    const from = s3.requests.length;
    const error = await store.write("wrong", "p", "load", { a: 1 }).catch((e: unknown) => e);
    expect(s3.requests.slice(from).map((r) => [r.status, r.errorCode])).toEqual([[403, "SignatureDoesNotMatch"]]);
    expect(s3.objects.has(`${BUCKET}/runs/${outputPath("wrong", "p", "load")}`)).toBe(false);
    expect(error).toBeInstanceOf(S3OutputError);
    const e = error as S3OutputError;
    expect(e.status).toBe(403);
    expect(e.code).toBe("SignatureDoesNotMatch");
    expect(e.message).toContain(`s3://${BUCKET}/runs/${outputPath("wrong", "p", "load")}`);
    expect(e.message).toContain("HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match");
    expect(e.message).toContain("KILN_S3_SECRET_ACCESS_KEY");
    expect(e.message).not.toContain(wrongSecret);
    expect(e.message).not.toContain(CREDENTIALS.secretAccessKey);
  });

  test("an unknown access key id: 403 InvalidAccessKeyId, naming the variable it came from", async () => {
    const store = s3OutputStore(s3Settings(), { ...CREDENTIALS, accessKeyId: "AKIAUNKNOWN", source: "AWS_ACCESS_KEY_ID" }, { retries: 0 });
    const error = await store.read("wrong", "p", "load").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3OutputError);
    expect((error as S3OutputError).code).toBe("InvalidAccessKeyId");
    expect((error as Error).message).toContain("HTTP 403 InvalidAccessKeyId");
    expect((error as Error).message).toContain("check AWS_ACCESS_KEY_ID");
  });

  test("the fake checks what is signed: a tampered body, an unsigned x-amz header, a stale date, no Authorization", async () => {
    const { AwsClient } = await import("aws4fetch");
    const aws = new AwsClient({ accessKeyId: CREDENTIALS.accessKeyId, secretAccessKey: CREDENTIALS.secretAccessKey, service: "s3", region: "us-east-1", retries: 0 });
    const url = `${s3.endpoint}/${BUCKET}/checks/object`;

    // signed for one body, sent with another
    const signed = await aws.sign(url, { method: "PUT", body: "original", headers: { "x-amz-content-sha256": sha256Hex("original") } });
    const tampered = await fetch(url, { method: "PUT", headers: signed.headers, body: "tampered" });
    expect(tampered.status).toBe(400);
    expect(await tampered.text()).toContain("<Code>XAmzContentSHA256Mismatch</Code>");

    // the signature covers the path: the same headers on another key do not verify
    const moved = await fetch(`${s3.endpoint}/${BUCKET}/checks/other`, { method: "PUT", headers: signed.headers, body: "original" });
    expect(moved.status).toBe(403);
    expect(await moved.text()).toContain("<Code>SignatureDoesNotMatch</Code>");

    const headers = new Headers(signed.headers);
    headers.set("x-amz-meta-extra", "added after signing");
    const unsigned = await fetch(url, { method: "PUT", headers, body: "original" });
    expect(unsigned.status).toBe(403);
    expect(await unsigned.text()).toContain("<HeadersNotSigned>x-amz-meta-extra</HeadersNotSigned>");

    const stale = await aws.sign(url, { method: "GET", aws: { datetime: "20150830T123600Z" } });
    const staleAnswer = await fetch(stale);
    expect(staleAnswer.status).toBe(403);
    expect(await staleAnswer.text()).toContain("<Code>RequestTimeTooSkewed</Code>");

    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(403);
    expect(await anonymous.text()).toContain("<Code>AccessDenied</Code>");

    // and the untouched request does verify
    expect((await fetch(await aws.sign(url, { method: "PUT", body: "original", headers: { "x-amz-content-sha256": sha256Hex("original") } }))).status).toBe(200);
  });

  test("HeadObject and DeleteObject, as a client other than kiln would use them", async () => {
    const { AwsClient } = await import("aws4fetch");
    const aws = new AwsClient({ accessKeyId: CREDENTIALS.accessKeyId, secretAccessKey: CREDENTIALS.secretAccessKey, service: "s3", region: "us-east-1", retries: 0 });
    const url = `${s3.endpoint}/${BUCKET}/head/object`;
    expect((await aws.fetch(url, { method: "PUT", body: "12345" })).status).toBe(200);
    const head = await aws.fetch(url, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("5");
    expect((await aws.fetch(url, { method: "DELETE" })).status).toBe(204);
    expect((await aws.fetch(url, { method: "HEAD" })).status).toBe(404);
  });

  test("a missing bucket is an error naming the bucket, not a missing output", async () => {
    const store = s3OutputStore(s3Settings({ bucket: "no-such-bucket" }), CREDENTIALS, { retries: 0 });
    const error = await store.read("x", "p", "load").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3OutputError);
    expect(error).not.toBeInstanceOf(OutputMissingError);
    expect((error as Error).message).toContain("s3://no-such-bucket/");
    expect((error as Error).message).toContain("HTTP 404 NoSuchBucket");
    expect((error as Error).message).toContain("output_store.bucket");
  });

  test("a server error says the bucket, key, status and S3's code and message; a passing 503 is retried", async () => {
    const store = s3OutputStore(s3Settings(), CREDENTIALS, { retries: 0 });
    s3.failNext(500, "InternalError", "We encountered an internal error. Please try again.");
    const error = await store.write("errs", "p", "load", 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3OutputError);
    expect((error as Error).message).toBe(
      `output_store (s3): PUT s3://${BUCKET}/runs/${outputPath("errs", "p", "load")} failed: HTTP 500 InternalError: We encountered an internal error. Please try again.`,
    );

    const retrying = s3OutputStore(s3Settings(), CREDENTIALS, { retries: 2 });
    const from = s3.requests.length;
    s3.failNext(503, "SlowDown", "Please reduce your request rate.");
    await retrying.write("errs", "p", "load", 2);
    expect(s3.requests.slice(from).map((r) => r.status)).toEqual([503, 200]);
    expect(await retrying.read("errs", "p", "load")).toBe(2);
  });

  test("an unreachable endpoint names it", async () => {
    const gone = await startFakeS3({ accessKeyId: "a", secretAccessKey: "b", buckets: [BUCKET] });
    const endpoint = gone.endpoint;
    await gone.stop();
    const error = await s3OutputStore(s3Settings({ endpoint }), CREDENTIALS, { retries: 0 }).read("x", "p", "b").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3OutputError);
    expect((error as S3OutputError).status).toBeNull();
    expect((error as Error).message).toContain(`cannot reach ${endpoint}`);
  });
});

describe("s3 settings and credentials", () => {
  test("object URLs: AWS's endpoint for the region when none is set, path-style or virtual-host", () => {
    const aws: S3OutputStoreSettings = { type: "s3", bucket: "b", prefix: "", endpoint: null, region: "eu-west-1", forcePathStyle: false };
    expect(s3ObjectUrl(aws, "a/b c/d:1")).toBe("https://b.s3.eu-west-1.amazonaws.com/a/b%20c/d%3A1");
    expect(s3ObjectUrl({ ...aws, forcePathStyle: true }, "k")).toBe("https://s3.eu-west-1.amazonaws.com/b/k");
    expect(s3ObjectUrl({ ...aws, endpoint: "http://minio:9000/", forcePathStyle: true }, "k")).toBe("http://minio:9000/b/k");
    expect(() => s3ObjectUrl({ ...aws, endpoint: "minio:9000" }, "k")).toThrow(/output_store\.endpoint: "minio:9000" is not an http/);
    expect(() => s3ObjectUrl({ ...aws, endpoint: "not a url" }, "k")).toThrow(OutputStoreSettingsError);
  });

  test("KILN_S3_* first, then AWS_*; a set is never mixed; a half set or none is an error naming the variables", () => {
    const both = {
      KILN_S3_ACCESS_KEY_ID: "kiln-id",
      KILN_S3_SECRET_ACCESS_KEY: "kiln-secret",
      AWS_ACCESS_KEY_ID: "aws-id",
      AWS_SECRET_ACCESS_KEY: "aws-secret",
      AWS_SESSION_TOKEN: "aws-token",
    };
    expect(s3CredentialsFromEnv(both)).toEqual({ accessKeyId: "kiln-id", secretAccessKey: "kiln-secret", source: "KILN_S3_ACCESS_KEY_ID" });
    expect(s3CredentialsFromEnv({ AWS_ACCESS_KEY_ID: "aws-id", AWS_SECRET_ACCESS_KEY: "aws-secret", AWS_SESSION_TOKEN: "aws-token" })).toEqual({
      accessKeyId: "aws-id",
      secretAccessKey: "aws-secret",
      sessionToken: "aws-token",
      source: "AWS_ACCESS_KEY_ID",
    });
    expect(() => s3CredentialsFromEnv({ KILN_S3_ACCESS_KEY_ID: "kiln-id", AWS_SECRET_ACCESS_KEY: "aws-secret" })).toThrow(
      "KILN_S3_ACCESS_KEY_ID is set but KILN_S3_SECRET_ACCESS_KEY is not",
    );
    expect(() => s3CredentialsFromEnv({})).toThrow(/KILN_S3_ACCESS_KEY_ID and KILN_S3_SECRET_ACCESS_KEY .*AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  });

  test("outputStoreEnv passes the resolved credentials to a container as KILN_S3_*, and nothing for other stores", () => {
    const settings = s3Settings();
    expect(outputStoreEnv(settings, { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "secret", AWS_SESSION_TOKEN: "tok" })).toEqual({
      KILN_S3_ACCESS_KEY_ID: "id",
      KILN_S3_SECRET_ACCESS_KEY: "secret",
      KILN_S3_SESSION_TOKEN: "tok",
    });
    expect(outputStoreEnv({ type: "database", maxBytes: 10 }, { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "secret" })).toEqual({});
    expect(outputStoreEnv({ type: "local" }, {})).toEqual({});
  });
});

describe("openOutputStore", () => {
  const local = () => fileOutputStore(join(dir, "opened"));

  test("opens the backend the settings name", async () => {
    await openOutputStore({ type: "local" }, { client, env: {}, local }).write("opened", "p", "b", "local");
    expect(existsSync(join(dir, "opened", outputPath("opened", "p", "b")))).toBe(true);

    await openOutputStore({ type: "database", maxBytes: 50 }, { client, env: {}, local }).write("opened", "p", "b", "db");
    const rs = await client.execute({ sql: "SELECT value FROM block_outputs WHERE pipeline_uuid = 'opened'", args: [] });
    expect(rs.rows.map((r) => r.value)).toEqual(['"db"']);
    await expect(openOutputStore({ type: "database", maxBytes: 5 }, { client, env: {}, local }).write("opened", "p", "big", "123456")).rejects.toThrow(
      "output_store.max_bytes (5)",
    );

    const env = { KILN_S3_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, KILN_S3_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey };
    await openOutputStore(s3Settings({ prefix: "opened/" }), { client, env, local }).write("opened", "p", "b", "s3");
    expect(new TextDecoder().decode(s3.objects.get(`${BUCKET}/opened/${outputPath("opened", "p", "b")}`)?.body)).toBe('"s3"');
  });

  test("an s3 store without credentials fails at open, naming the variables", () => {
    expect(() => openOutputStore(s3Settings(), { client, env: {}, local })).toThrow(OutputStoreSettingsError);
    expect(() => openOutputStore(s3Settings(), { client, env: {}, local })).toThrow("KILN_S3_ACCESS_KEY_ID");
  });
});
