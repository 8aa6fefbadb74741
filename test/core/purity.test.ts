/** core must run anywhere JavaScript runs: no runtime-specific imports or globals. */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/fixtures.ts";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

// aws4fetch is fetch + WebCrypto only, so it runs wherever core does
const ALLOWED_PACKAGES = new Set(["valibot", "yaml", "croner", "aws4fetch"]);

test("core imports nothing runtime-specific", () => {
  const problems: string[] = [];
  for (const file of sources(join(REPO_ROOT, "core/src"))) {
    const text = readFileSync(file, "utf8");
    const rel = file.slice(REPO_ROOT.length + 1);
    for (const match of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?from\s+"([^"]+)"/gms)) {
      const isType = Boolean(match[2]);
      const spec = match[3] ?? "";
      if (spec.startsWith(".")) continue;
      if (spec.startsWith("@libsql/") && isType) continue; // types only: the client is injected
      if (!ALLOWED_PACKAGES.has(spec)) problems.push(`${rel}: imports ${spec}`);
    }
    if (/\bimport\(\s*["']node:/.test(text) || /\brequire\(/.test(text)) problems.push(`${rel}: dynamic node import or require`);
    if (/\b(Deno|Bun)\./.test(text)) problems.push(`${rel}: uses a runtime global`);
    if (/\bprocess\.(env|exit|argv|pid|kill)/.test(text)) problems.push(`${rel}: uses process`);
    if (/\bBuffer\./.test(text)) problems.push(`${rel}: uses Buffer`);
  }
  expect(problems).toEqual([]);
});

test("the check above catches a runtime import", () => {
  const text = 'import { readFileSync } from "node:fs";';
  const match = [...text.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?from\s+"([^"]+)"/gms)][0];
  expect(match?.[3]).toBe("node:fs");
});
