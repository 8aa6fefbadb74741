/**
 * /api/openapi.json as tools read it: it validates against the OpenAPI schema of the version it
 * declares with an independent validator (@apidevtools/swagger-parser), and a client generated
 * from it (openapi-typescript types, openapi-fetch calls) type-checks a call to every route.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import openapiTS, { astToString } from "openapi-typescript";
import { fetchDocument } from "../helpers/openapi.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

let s: ServerFixture;
let document: Record<string, unknown>;

beforeAll(async () => {
  s = await serverFixture();
  document = await fetchDocument(s);
});
afterAll(() => s.close());

type Operation = { parameters?: Array<{ name: string; in: string; required?: boolean; schema?: { type?: string } }>; requestBody?: unknown };

/** A literal of the parameter's type, for the generated call. */
function sample(schema: { type?: string } | undefined): string {
  return schema?.type === "integer" || schema?.type === "number" ? "1" : schema?.type === "boolean" ? "true" : '"1"';
}

describe("the OpenAPI document", () => {
  test("validates against the OpenAPI 3.0 schema (swagger-parser)", async () => {
    expect(document.openapi).toMatch(/^3\.0\.\d+$/);
    // validate() throws, listing every schema error, when the document does not conform
    const api = await SwaggerParser.validate(structuredClone(document) as never);
    expect(Object.keys((api as { paths: object }).paths).length).toBe(Object.keys(document.paths as object).length);
  });

  test("the validator is not blind: an empty required array (forbidden in 3.0) is refused", async () => {
    const broken = structuredClone(document) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>> };
    const op = Object.values(broken.paths).flatMap((p) => Object.values(p)).find((o) => o.requestBody);
    op!.requestBody!.content["application/json"]!.schema.required = [];
    await expect(SwaggerParser.validate(broken as never)).rejects.toThrow();
  });

  test("a client generated from it type-checks a call to every route", async () => {
    const types = astToString(await openapiTS(structuredClone(document) as never));
    const dir = mkdtempSync(join(resolve(import.meta.dir, "../.."), ".tmp-openapi-"));
    try {
      writeFileSync(join(dir, "api.d.ts"), types);
      const calls: string[] = [];
      const paths = document.paths as Record<string, Record<string, Operation>>;
      for (const [path, methods] of Object.entries(paths)) {
        for (const [method, op] of Object.entries(methods)) {
          const pathParams = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => `${JSON.stringify(p.name)}: "1"`);
          // required query parameters too: leaving one out is a type error
          const queryParams = (op.parameters ?? []).filter((p) => p.in === "query" && p.required).map((p) => `${JSON.stringify(p.name)}: ${sample(p.schema)}`);
          const parts = [pathParams.length > 0 ? `path: { ${pathParams.join(", ")} }` : "", queryParams.length > 0 ? `query: { ${queryParams.join(", ")} }` : ""].filter(Boolean);
          const params = parts.length > 0 ? `params: { ${parts.join(", ")} },` : "";
          const body = op.requestBody ? `body: {} as Body<${JSON.stringify(path)}, ${JSON.stringify(method)}>,` : "";
          calls.push(`  await client.${method.toUpperCase()}(${JSON.stringify(path)}, { ${params} ${body} });`);
        }
      }
      writeFileSync(
        join(dir, "calls.ts"),
        `import createClient from "openapi-fetch";
import type { paths } from "./api";
type Body<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { requestBody: { content: { "application/json": infer B } } } ? B : never;
const client = createClient<paths>({ baseUrl: "http://127.0.0.1:1" });
export async function everyRoute(): Promise<void> {
${calls.join("\n")}
  // @ts-expect-error: a route the document does not have
  await client.GET("/api/no_such_route");
}
`,
      );
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: "esnext", moduleResolution: "bundler", target: "es2022", lib: ["es2022", "dom"], skipLibCheck: true, types: [] }, files: ["calls.ts"] }),
      );
      const tsc = Bun.spawnSync([process.execPath, resolve(import.meta.dir, "../../node_modules/typescript/bin/tsc"), "-p", join(dir, "tsconfig.json")], { stdout: "pipe", stderr: "pipe" });
      const output = tsc.stdout.toString() + tsc.stderr.toString();
      expect(output).toBe("");
      expect(tsc.exitCode).toBe(0);
      expect(calls.length).toBeGreaterThan(40);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
