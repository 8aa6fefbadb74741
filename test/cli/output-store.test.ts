/**
 * kiln.yaml's output_store through the real CLI: `kiln run` in a child process, each block in
 * its own `kiln run-block` process, the downstream block reading the upstream's output from the
 * database (or S3, a fake on 127.0.0.1), and nothing under the project's .variables folder.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { outputPath } from "@kiln/core";
import { blockRuns, pipelineRuns, printedPartition, queryDb, runKiln, TempDirs, type KilnResult } from "../helpers/cli.ts";
import { startFakeS3, type FakeS3 } from "../helpers/fake-s3.ts";

const temp = new TempDirs();
let s3: FakeS3;
const S3_ID = "AKIACLITEST";
const S3_SECRET = "cli-test-secret";

beforeAll(async () => {
  s3 = await startFakeS3({ accessKeyId: S3_ID, secretAccessKey: S3_SECRET, buckets: ["kiln-cli"] });
});

afterAll(async () => {
  await s3.stop();
  temp.removeAll();
});

/** A two-block pipeline: the transformer only succeeds if it reads what the loader returned. */
function twoBlockProject(kilnYaml: string): string {
  return temp.project({
    "kiln.yaml": kilnYaml,
    "pipelines/two/metadata.yaml":
      "blocks:\n  - uuid: load\n    type: data_loader\n  - uuid: total\n    type: transformer\n    upstream_blocks: [load]\n",
    "data_loaders/load.js": 'export default function load() { return { rows: [3, 4, 5], from: "load", pid: process.pid }; }\n',
    "transformers/total.js":
      "export default function total(data) {\n" +
      '  if (!data || data.from !== "load") throw new Error("the upstream output did not arrive: " + JSON.stringify(data));\n' +
      "  return { sum: data.rows.reduce((a, b) => a + b, 0), upstreamPid: data.pid, pid: process.pid };\n" +
      "}\n",
  });
}

function run(project: string, db: string, env: Record<string, string | undefined> = {}): Promise<KilnResult> {
  return runKiln(["run", project, "two"], {
    KILN_DATABASE_URL: `file:${db}`,
    KILN_S3_ACCESS_KEY_ID: undefined,
    KILN_S3_SECRET_ACCESS_KEY: undefined,
    KILN_S3_SESSION_TOKEN: undefined,
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
    ...env,
  });
}

describe("output_store: {type: database}", () => {
  test("kiln run: the downstream block reads the upstream's output from the database, in another process; nothing under .variables", async () => {
    const project = twoBlockProject("output_store:\n  type: database\n");
    const db = join(temp.make("kiln-db-"), "kiln.db");
    const result = await run(project, db);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const partition = printedPartition(result.stdout);

    const rows = await queryDb(db, "SELECT block_uuid, value, size_bytes FROM block_outputs WHERE pipeline_uuid = 'two' AND execution_partition = ? ORDER BY block_uuid", [partition]);
    expect(rows.map((r) => r.block_uuid)).toEqual(["load", "total"]);
    const load = JSON.parse(String(rows[0]?.value)) as { rows: number[]; pid: number };
    const total = JSON.parse(String(rows[1]?.value)) as { sum: number; upstreamPid: number; pid: number };
    expect(load.rows).toEqual([3, 4, 5]);
    expect(total.sum).toBe(12);
    // each block ran in its own `kiln run-block` process, so the value crossed processes through the table
    expect(total.upstreamPid).toBe(load.pid);
    expect(total.pid).not.toBe(load.pid);
    expect(rows[0]?.size_bytes).toBe(new TextEncoder().encode(String(rows[0]?.value)).byteLength);

    expect(existsSync(join(project, ".variables"))).toBe(false);
    const [pipelineRun] = await pipelineRuns(db);
    expect(pipelineRun?.status).toBe("completed");
  });

  test("an output over max_bytes fails its block run with a message naming the block, its size and output_store.max_bytes", async () => {
    const project = twoBlockProject("output_store:\n  type: database\n  max_bytes: 20\n");
    const db = join(temp.make("kiln-db-"), "kiln.db");
    const result = await run(project, db);
    expect(result.code).toBe(1);
    const blocks = await blockRuns(db);
    expect(Object.fromEntries(blocks.map((b) => [b.block_uuid, b.status]))).toEqual({ load: "failed", total: "upstream_failed" });
    const error = blocks.find((b) => b.block_uuid === "load")?.error ?? "";
    expect(error).toContain('block "load" of pipeline "two"');
    expect(error).toMatch(/an output of \d+ bytes as JSON, over output_store\.max_bytes \(20\)/);
    expect((await queryDb(db, "SELECT count(*) AS n FROM block_outputs"))[0]?.n).toBe(0);
  });
});

describe("output_store: {type: s3}", () => {
  test("kiln run with KILN_S3_* credentials: both outputs go to the bucket, signed, and the downstream reads the upstream's", async () => {
    const project = twoBlockProject(`output_store:\n  type: s3\n  bucket: kiln-cli\n  prefix: proj/\n  endpoint: ${s3.endpoint}\n`);
    const db = join(temp.make("kiln-db-"), "kiln.db");
    const from = s3.requests.length;
    const result = await run(project, db, { KILN_S3_ACCESS_KEY_ID: S3_ID, KILN_S3_SECRET_ACCESS_KEY: S3_SECRET });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const partition = printedPartition(result.stdout);
    const object = (block: string) => s3.objects.get(`kiln-cli/proj/${outputPath("two", partition, block)}`);
    expect((JSON.parse(new TextDecoder().decode(object("total")?.body)) as { sum: number }).sum).toBe(12);
    expect(object("load")).toBeDefined();
    const seen = s3.requests.slice(from).map((r) => [r.method, r.key?.split("/").at(-2), r.status]);
    expect(seen).toEqual([
      ["PUT", "load", 200],
      ["GET", "load", 200],
      ["PUT", "total", 200],
    ]);
    expect(existsSync(join(project, ".variables"))).toBe(false);
  });

  test("AWS_* credentials work when KILN_S3_* are unset; wrong ones fail the block run with S3's SignatureDoesNotMatch", async () => {
    const project = twoBlockProject(`output_store:\n  type: s3\n  bucket: kiln-cli\n  endpoint: ${s3.endpoint}\n`);
    const ok = await run(project, join(temp.make("kiln-db-"), "kiln.db"), { AWS_ACCESS_KEY_ID: S3_ID, AWS_SECRET_ACCESS_KEY: S3_SECRET });
    expect(ok.code).toBe(0);

    const db = join(temp.make("kiln-db-"), "kiln.db");
    const bad = await run(project, db, { AWS_ACCESS_KEY_ID: S3_ID, AWS_SECRET_ACCESS_KEY: "wrong-secret-value" });
    expect(bad.code).toBe(1);
    const error = (await blockRuns(db)).find((b) => b.block_uuid === "load")?.error ?? "";
    expect(error).toContain("output_store (s3): PUT s3://kiln-cli/.variables/pipelines/two/");
    expect(error).toContain("HTTP 403 SignatureDoesNotMatch");
    expect(error).toContain("AWS_SECRET_ACCESS_KEY");
    expect(error).not.toContain("wrong-secret-value");
    expect(bad.stdout + bad.stderr).not.toContain("wrong-secret-value");
  });

  test("no credentials: a usage error (exit 2) naming the variables, before any run starts", async () => {
    const project = twoBlockProject(`output_store:\n  type: s3\n  bucket: kiln-cli\n  endpoint: ${s3.endpoint}\n`);
    const db = join(temp.make("kiln-db-"), "kiln.db");
    const result = await run(project, db);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("output_store (s3) needs credentials: set KILN_S3_ACCESS_KEY_ID and KILN_S3_SECRET_ACCESS_KEY");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(existsSync(db) ? await pipelineRuns(db) : []).toEqual([]);
  });
});
