/** blockEnvOf: what a block running in a container is given to reach the database and the output store. */
import { afterAll, describe, expect, test } from "bun:test";
import { type ExecutorContext } from "@kiln/core";
import { loadProjectSettings, type OutputStoreSettings } from "@kiln/core/project";
import { folderSource } from "@kiln/node";
import { blockEnvOf, BUILTIN_EXECUTORS, buildExecutors } from "../../cli/src/executors.ts";
import { UsageError } from "../../cli/src/errors.ts";
import { TempDirs } from "../helpers/cli.ts";

const temp = new TempDirs();
afterAll(() => temp.removeAll());

const S3: OutputStoreSettings = { type: "s3", bucket: "b", prefix: "", endpoint: "http://127.0.0.1:9000", region: "us-east-1", forcePathStyle: true };
const DB_URL = "libsql://kiln.example.test";

describe("blockEnvOf", () => {
  test("with an s3 output store, the resolved credentials go to the block as KILN_S3_*, from AWS_* when KILN_S3_* are unset", () => {
    const env = blockEnvOf(DB_URL, { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "secret", AWS_SESSION_TOKEN: "token", KILN_DATABASE_AUTH_TOKEN: "db-token" }, S3);
    expect(env).toEqual({
      KILN_DATABASE_URL: DB_URL,
      KILN_DATABASE_AUTH_TOKEN: "db-token",
      KILN_S3_ACCESS_KEY_ID: "id",
      KILN_S3_SECRET_ACCESS_KEY: "secret",
      KILN_S3_SESSION_TOKEN: "token",
    });
  });

  test("KILN_S3_* win over AWS_*, so kiln's store can use other credentials than the executor's own AWS calls", () => {
    const env = blockEnvOf(DB_URL, { KILN_S3_ACCESS_KEY_ID: "kiln-id", KILN_S3_SECRET_ACCESS_KEY: "kiln-secret", AWS_ACCESS_KEY_ID: "aws-id", AWS_SECRET_ACCESS_KEY: "aws-secret" }, S3);
    expect(env.KILN_S3_ACCESS_KEY_ID).toBe("kiln-id");
    expect(env.KILN_S3_SECRET_ACCESS_KEY).toBe("kiln-secret");
    expect(env).not.toHaveProperty("KILN_S3_SESSION_TOKEN");
  });

  test("no S3 credentials leave for containers when the store is local or the database", () => {
    const aws = { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "secret" };
    expect(blockEnvOf(DB_URL, aws, { type: "database", maxBytes: 100 })).toEqual({ KILN_DATABASE_URL: DB_URL });
    expect(blockEnvOf(DB_URL, aws)).toEqual({ KILN_DATABASE_URL: DB_URL });
  });

  test("an s3 store without credentials is a usage error naming the variables", () => {
    expect(() => blockEnvOf(DB_URL, {}, S3)).toThrow(UsageError);
    expect(() => blockEnvOf(DB_URL, {}, S3)).toThrow("KILN_S3_ACCESS_KEY_ID and KILN_S3_SECRET_ACCESS_KEY");
  });

  test("buildExecutors hands the project's output store credentials to every executor factory", async () => {
    const root = temp.project({ "kiln.yaml": "output_store:\n  type: s3\n  bucket: outputs\n  endpoint: http://127.0.0.1:9000\n" });
    const settings = await loadProjectSettings(folderSource(root));
    const seen: ExecutorContext[] = [];
    const capture = (context: ExecutorContext) => {
      seen.push(context);
      return { type: "capture_env", start: () => Promise.reject(new Error("unused")), status: () => Promise.reject(new Error("unused")), cancel: async () => {} };
    };
    // only the capturing factory: the built-in remote executors are other tests' subject
    const builtins = BUILTIN_EXECUTORS.splice(0, BUILTIN_EXECUTORS.length, async () => capture);
    try {
      await buildExecutors(settings, root, DB_URL, { KILN_S3_ACCESS_KEY_ID: "kiln-id", KILN_S3_SECRET_ACCESS_KEY: "kiln-secret" });
    } finally {
      BUILTIN_EXECUTORS.splice(0, BUILTIN_EXECUTORS.length, ...builtins);
    }
    expect(seen.map((c) => c.blockEnv)).toEqual([{ KILN_DATABASE_URL: DB_URL, KILN_S3_ACCESS_KEY_ID: "kiln-id", KILN_S3_SECRET_ACCESS_KEY: "kiln-secret" }]);
  });
});
