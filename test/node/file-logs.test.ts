/** Block logs read back: the file reader's byte offsets and the line parser, against what the sink writes. */
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { formatLogLine, logPath, parseLogLine, splitLogChunk, type LogReader } from "@kiln/core";
import { fileLogReader, fileLogSink } from "@kiln/node";

const root = mkdtempSync(join(tmpdir(), "kiln-logs-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Every line from offset 0, reading `maxBytes` at a time and resuming at each nextOffset. */
async function readAll(reader: LogReader, block: string, maxBytes: number): Promise<{ lines: string[]; offset: number }> {
  const lines: string[] = [];
  let offset = 0;
  for (let reads = 0; reads < 10_000; reads++) {
    const chunk = await reader.read("p", "1/20240101T000000", block, offset, maxBytes);
    if (chunk.text === "") break;
    expect(Buffer.byteLength(chunk.text)).toBe(chunk.nextOffset - offset);
    lines.push(...splitLogChunk(chunk, offset).map((l) => l.line));
    offset = chunk.nextOffset;
  }
  return { lines, offset };
}

describe("fileLogReader", () => {
  const sink = fileLogSink(root);
  const reader = fileLogReader(root);

  test("reads back complete lines by byte offset, whatever the read size, multi-byte text included", async () => {
    const written = ["first", "zweite Zeile: grüße", "third ✓ with emoji 🚀", "fourth"].map((m, i) => formatLogLine(Date.UTC(2024, 0, 1, 0, 0, i), "info", m));
    for (const line of written) sink.append("p", "1/20240101T000000", "b", line);
    for (const maxBytes of [7, 64, 65_536]) {
      const { lines } = await readAll(reader, "b", maxBytes);
      expect(lines.join("")).toBe(written.map((l) => l.slice(0, -1)).join(""));
      if (maxBytes >= 64) expect(lines).toEqual(written.map((l) => l.slice(0, -1)));
    }
  });

  test("a line still being written waits for its end; a line longer than a read is cut at a character boundary", async () => {
    const path = join(root, logPath("p", "1/20240101T000000", "c"));
    mkdirSync(dirname(path), { recursive: true });
    appendFileSync(path, "half a li");
    expect(await reader.read("p", "1/20240101T000000", "c", 0, 1024)).toEqual({ text: "", nextOffset: 0 });
    appendFileSync(path, "ne\n");
    expect(await reader.read("p", "1/20240101T000000", "c", 0, 1024)).toEqual({ text: "half a line\n", nextOffset: 12 });

    const long = "ü".repeat(20) + "\n"; // 2 bytes each: odd read sizes land inside a character
    appendFileSync(path, long);
    const pieces: string[] = [];
    let offset = 12;
    for (;;) {
      const chunk = await reader.read("p", "1/20240101T000000", "c", offset, 7);
      if (chunk.text === "") break;
      expect(chunk.text).not.toContain("\uFFFD");
      pieces.push(chunk.text);
      offset = chunk.nextOffset;
    }
    expect(pieces.join("")).toBe(long);
  });

  test("an absent log reads as empty, and names cannot reach outside .logs/", async () => {
    expect(await reader.read("p", "1/20240101T000000", "never-ran", 0, 1024)).toEqual({ text: "", nextOffset: 0 });
    // .logs/pipelines/../../secret.log is the project's secret.log
    appendFileSync(join(root, "secret.log"), "not a log\n");
    expect(await reader.read("..", "..", "secret", 0, 1024)).toEqual({ text: "", nextOffset: 0 });
  });
});

describe("parseLogLine", () => {
  test("reverses formatLogLine: time, level, message and fields, braces in messages and fields included", () => {
    const at = Date.UTC(2024, 4, 6, 7, 8, 9, 123);
    const cases: Array<[string, string, Record<string, unknown> | undefined]> = [
      ["info", "plain", undefined],
      ["warn", "with fields", { n: 1, nested: { a: [1, "x"] } }],
      ["error", "a {literal} brace", undefined],
      ["info", 'ends like json {"a":1}', { b: 2 }],
      ["info", "field holds a brace", { why: "x {y" }],
      ["stdout", "", undefined],
    ];
    for (const [level, message, fields] of cases) {
      const line = formatLogLine(at, level, message, fields).slice(0, -1);
      expect(parseLogLine(line)).toEqual({ at, level, message, fields: fields ?? null });
    }
  });

  test("a line not in kiln's format is kept whole, with no time or level", () => {
    expect(parseLogLine("    at foo (bar.js:1:2)")).toEqual({ at: null, level: null, message: "    at foo (bar.js:1:2)", fields: null });
    expect(parseLogLine("2024-13-45T99:99:99Z INFO nope")).toMatchObject({ at: null, level: null });
  });
});
