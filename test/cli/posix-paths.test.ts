/**
 * The thin block process's own absolute paths and file: URLs (cli/src/posix-paths.ts) agree with
 * node:path's resolve and node:url's file URLs, which it does without to boot faster.
 */
import { expect, test } from "bun:test";
import fc from "fast-check";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { absolutePath, fileUrlOf } from "../../cli/src/posix-paths.ts";

// segments with the characters that matter: dots, spaces, URL specials, non-ASCII
const segment = fc.oneof(fc.constantFrom(".", "..", "", "a", "b c", "#x", "?q", "%20", "%", "a\\b", "new\nline", "tab\t", "cr\r", "é", "日本", "data_loaders", "load.ts"), fc.string({ minLength: 1, maxLength: 6 }).filter((s) => !s.includes("/") && !s.includes("\0")));
const relative = fc.array(segment, { maxLength: 6 }).map((parts) => parts.join("/"));
const absolute = relative.map((path) => `/${path}`);

test("absolutePath resolves like node:path's resolve, for relative and absolute paths", () => {
  fc.assert(
    fc.property(absolute, fc.oneof(relative, absolute), (base, path) => {
      expect(absolutePath(base, path)).toBe(resolve(base, path));
    }),
    { numRuns: 2000 },
  );
});

test("fileUrlOf's URL decodes to the same path as node:url's pathToFileURL's", () => {
  fc.assert(
    fc.property(absolute, (path) => {
      const normal = resolve(path);
      expect(fileURLToPath(fileUrlOf(normal))).toBe(fileURLToPath(pathToFileURL(normal)));
      expect(fileURLToPath(fileUrlOf(normal))).toBe(normal);
    }),
    { numRuns: 2000 },
  );
});

test("import() of fileUrlOf's URL loads the file, whatever its folder's name holds", async () => {
  const root = mkdtempSync(join(tmpdir(), "kiln-posix-paths-"));
  try {
    // ("?" and "\\" are left out: Bun cannot import a file under a folder with one in its name, by path or by URL)
    for (const [i, name] of ["plain", "a b", "#hash", "100%", "pipe|", "[x]", "é 日本"].entries()) {
      mkdirSync(join(root, name));
      writeFileSync(join(root, name, "m.js"), `export default ${i};\n`);
      expect(((await import(fileUrlOf(join(root, name, "m.js")))) as { default: number }).default).toBe(i);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
