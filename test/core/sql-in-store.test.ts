/**
 * Every SQL statement kiln runs lives under core/src/store: a file anywhere else in kiln's
 * sources that spells SQL in a string, or hands a client or a batch a statement of its own,
 * fails this test. (A PostgreSQL store then replaces one folder.)
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/fixtures.ts";

/** The source folders of kiln's packages (tests, benches and examples are not kiln). */
const SOURCE_ROOTS = ["core/src", "scheduler/src", "server/src", "cli/src", "node/src", "worker/src", ...pluginSources()];
const STORE = "core/src/store/";

/** Files outside the store allowed to hold SQL, each with why. Keep it empty. */
const REVIEWED: Record<string, string> = {
  // a driver, like node/src/local-client.ts: it hands D1 the store's statements, plus one probe
  // of its own that always fails (to find which statement of a failed batch failed)
  "worker/src/d1-client.ts": "the D1 driver (a SqlClient): forwards the store's statements and its failing probe",
};

function pluginSources(): string[] {
  return readdirSync(join(REPO_ROOT, "plugins")).map((name) => `plugins/${name}/src`);
}

function sources(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const path = join(dir, name);
    if (name === "node_modules") return [];
    return statSync(path).isDirectory() ? sources(path) : /\.(ts|tsx|mts|js|mjs)$/.test(name) ? [path] : [];
  });
}

// Statements as kiln writes them (keywords in capitals), inside a string or template literal.
const SQL_IN_STRING = /\b(SELECT\b[\s\S]*?\bFROM\b|SELECT\s+(CASE|count|min|max|1)\b|INSERT\s+INTO\b|UPDATE\s+[a-z_]+\s+SET\b|DELETE\s+FROM\b|CREATE\s+(TABLE|INDEX|TRIGGER|VIEW)\b|DROP\s+(TABLE|INDEX|TRIGGER)\b|ALTER\s+TABLE\b|PRAGMA\s+[a-z_]+|ON\s+CONFLICT\b|RETURNING\s+(\*|id)\b)/;
// Handing a client or a batch a statement directly: execute("..."), execute({ sql }), batch([...]), raw(...).
const STATEMENT_CALL = /\.(execute|executeMultiple)\(\s*["'`{]|\.batch\(\s*\[|\.raw\(|\bsql\s*:\s*["'`]/;

/** The string and template literals of a source file (comments dropped first: they may name statements). */
function stringLiterals(text: string): string[] {
  const withoutComments = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
  return [...withoutComments.matchAll(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g)].map((m) => m[0]);
}

/** What in `text` looks like SQL, as messages. */
function sqlFindings(text: string): string[] {
  const found: string[] = [];
  for (const literal of stringLiterals(text)) {
    const match = SQL_IN_STRING.exec(literal);
    if (match) found.push(`SQL in a string: ${literal.slice(0, 80)}`);
  }
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
  for (const line of code.split("\n")) {
    if (STATEMENT_CALL.test(line)) found.push(`a statement handed over: ${line.trim().slice(0, 80)}`);
  }
  return found;
}

test("no file outside core/src/store contains SQL", () => {
  const problems: string[] = [];
  let scanned = 0;
  for (const root of SOURCE_ROOTS) {
    for (const file of sources(join(REPO_ROOT, root))) {
      const rel = file.slice(REPO_ROOT.length + 1);
      if (rel.startsWith(STORE) || rel in REVIEWED) continue;
      scanned++;
      for (const finding of sqlFindings(readFileSync(file, "utf8"))) problems.push(`${rel}: ${finding}`);
    }
  }
  // the scan saw kiln's sources (a wrong root would pass vacuously)
  expect(scanned).toBeGreaterThan(100);
  expect(problems).toEqual([]);
});

test("the check above catches SQL in each form kiln has written it", () => {
  const caught = [
    'await client.execute("SELECT min(next_run_at) AS next FROM pipeline_schedules WHERE status = \'active\'");',
    "batch.raw({ sql: `UPDATE pipeline_runs SET passed_sla = 1 WHERE id = ?`, args: [id] });",
    'const FLAG = "SELECT CASE WHEN changes() = 1 THEN 1 ELSE json(\'x\') END";',
    "await client.batch([{ sql: 'DELETE FROM revoked_sessions WHERE expires_at < ?', args: [now] }], 'write');",
    'await client.execute("PRAGMA foreign_keys = ON");',
    "const q = `INSERT INTO notifications (kind) VALUES (?)`;",
  ];
  for (const text of caught) expect(sqlFindings(text).length).toBeGreaterThan(0);
});

test("the check above lets ordinary code through", () => {
  const passed = [
    "const batch = store.batch().flagPassedSla(run.id);",
    'throw new UsageError("select a pipeline from the list");',
    "const done = engine.execute(run.id, { owner });",
    "// SELECT * FROM pipeline_runs: a comment may name a statement",
    'log.info("updated the trigger set from triggers.yaml");',
  ];
  for (const text of passed) expect(sqlFindings(text)).toEqual([]);
});

test("every reviewed exception still exists and still needs to be one", () => {
  for (const [rel, why] of Object.entries(REVIEWED)) {
    expect(why.length).toBeGreaterThan(0);
    expect(sqlFindings(readFileSync(join(REPO_ROOT, rel), "utf8")).length).toBeGreaterThan(0);
  }
});
