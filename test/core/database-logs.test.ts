/** Block logs in the database (the Worker's log store): appends buffered and stacked by offset, read back as the file reader does. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitLogChunk } from "@kiln/core";
import { databaseLogReader, databaseLogSink } from "@kiln/core/runtime";
import { Store, type SqlClient } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";

let dir: string;
let client: SqlClient;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-db-logs-"));
  client = await openDatabase(`file:${join(dir, "kiln.db")}`);
  await Store.open(client);
});
afterAll(() => {
  client.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the database log store", () => {
  test("lines appended over several flushes read back whole and in order, resumable by offset", async () => {
    const sink = databaseLogSink(client, { flushMs: 10_000 });
    const reader = databaseLogReader(client);
    sink.append("p", "1/x", "load", "one\n");
    sink.append("p", "1/x", "load", "twö\n");
    sink.append("p", "1/x", "other", "elsewhere\n");
    // nothing is stored before the flush
    expect((await reader.read("p", "1/x", "load", 0, 1000)).text).toBe("");
    await sink.flush();
    sink.append("p", "1/x", "load", "three\n");
    await sink.flush();
    const all = await reader.read("p", "1/x", "load", 0, 1000);
    expect(all.text).toBe("one\ntwö\nthree\n");
    expect(all.nextOffset).toBe(new TextEncoder().encode(all.text).length);
    expect(splitLogChunk(all, 0).map((l) => l.line)).toEqual(["one", "twö", "three"]);
    // from the middle: the offset just after "one\n"
    expect(await reader.read("p", "1/x", "load", 4, 1000)).toEqual({ text: "twö\nthree\n", nextOffset: all.nextOffset });
    // a small page ends at a whole line, and the next read resumes there
    const page = await reader.read("p", "1/x", "load", 0, 9);
    expect(page).toEqual({ text: "one\ntwö\n", nextOffset: 9 });
    expect((await reader.read("p", "1/x", "load", page.nextOffset, 1000)).text).toBe("three\n");
    expect((await reader.read("p", "1/x", "other", 0, 1000)).text).toBe("elsewhere\n");
    expect(await reader.read("p", "1/x", "missing", 0, 1000)).toEqual({ text: "", nextOffset: 0 });
    expect((await reader.read("p", "1/x", "load", all.nextOffset, 1000)).text).toBe("");
  });

  test("a line longer than a page comes cut at a character boundary", async () => {
    const sink = databaseLogSink(client);
    sink.append("p", "2/x", "long", `${"é".repeat(10)}\n`);
    await sink.flush();
    const cut = await databaseLogReader(client).read("p", "2/x", "long", 0, 5);
    expect(cut).toEqual({ text: "éé", nextOffset: 4 });
  });

  test("the sink flushes by itself after its interval", async () => {
    const sink = databaseLogSink(client, { flushMs: 20 });
    sink.append("p", "3/x", "timed", "later\n");
    const reader = databaseLogReader(client);
    let text = "";
    for (let i = 0; i < 100 && text === ""; i++) {
      await new Promise((r) => setTimeout(r, 20));
      text = (await reader.read("p", "3/x", "timed", 0, 100)).text;
    }
    expect(text).toBe("later\n");
  });
});
