/**
 * The project `mage start` creates runs on kiln unchanged: Mage's template (metadata.yaml with
 * its spark/emr settings and env_var() webhooks, example_pipeline and its three pandas blocks,
 * test/fixtures/mage_template, copied as Mage ships them), with /usr/bin/python3 (Debian's
 * pandas and requests, .ci/setup.d/python.sh). The one edit: the loader's
 * CSV URL points at a server on loopback, since the machine has no outside network.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { queryDb, REPO_ROOT, runKiln, TempDirs } from "../helpers/cli.ts";

const TEMPLATE = join(REPO_ROOT, "test/fixtures/mage_template");
const MAGE_CSV_URL = "https://raw.githubusercontent.com/datasciencedojo/datasets/master/titanic.csv?raw=True";
const PYTHON = "/usr/bin/python3";

// A few rows with the Titanic file's columns; Age, Fare and Parch have gaps to fill with medians.
const CSV = [
  "PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked",
  '1,0,3,"Braund, Mr. Owen Harris",male,22,1,0,A/5 21171,7.25,,S',
  '2,1,1,"Cumings, Mrs. John Bradley",female,38,1,0,PC 17599,71.2833,C85,C',
  '3,1,3,"Heikkinen, Miss. Laina",female,,0,,STON/O2. 3101282,7.925,,S',
  '4,1,1,"Futrelle, Mrs. Jacques Heath",female,35,1,0,113803,,C123,S',
  '5,0,3,"Allen, Mr. William Henry",male,35,0,0,373450,8.05,,S',
  "",
].join("\n");

const dirs = new TempDirs();
let server: ReturnType<typeof Bun.serve>;
let requests = 0;

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(request) {
      requests++;
      return new URL(request.url).pathname === "/titanic.csv" ? new Response(CSV, { headers: { "Content-Type": "text/csv" } }) : new Response("no", { status: 404 });
    },
  });
});
afterAll(() => {
  server.stop(true);
  dirs.removeAll();
});

const hasPandas = Bun.spawnSync([PYTHON, "-c", "import pandas, requests"]).exitCode === 0;

test.skipIf(!hasPandas)("Mage's template project runs unchanged under kiln run", async () => {
  const root = dirs.make("kiln-mage-template-");
  cpSync(TEMPLATE, root, { recursive: true });
  const loader = join(root, "data_loaders/load_titanic.py");
  const code = readFileSync(loader, "utf8");
  expect(code).toContain(MAGE_CSV_URL);
  writeFileSync(loader, code.replace(MAGE_CSV_URL, `http://127.0.0.1:${server.port}/titanic.csv`));

  // variables_dir: ~/.mage_data, under a home of the test's own: outputs land in <home>/.mage_data/<project>, as in Mage
  const home = dirs.make("kiln-mage-home-");
  const result = await runKiln(["run", root, "example_pipeline"], { KILN_PYTHON: PYTHON, MAGE_SLACK_WEBHOOK_URL: undefined, MAGE_TEAMS_WEBHOOK_URL: undefined, MAGE_DATA_DIR: undefined, HOME: home });
  expect(result.stderr).toContain("kiln: warning: metadata.yaml: kiln does not act on variables_retention_period, emr_config, spark_config; they are ignored");
  expect(result.code).toBe(0);
  expect(requests).toBe(1);

  const runs = await queryDb(join(root, ".kiln/kiln.db"), "SELECT block_uuid, status FROM block_runs ORDER BY id");
  expect(runs).toEqual([
    { block_uuid: "load_titanic", status: "completed" },
    { block_uuid: "fill_in_missing_values", status: "completed" },
    { block_uuid: "export_titanic_clean", status: "completed" },
  ]);
  const variables = join(home, ".mage_data", basename(root), "pipelines/example_pipeline/.variables");
  expect(existsSync(variables)).toBe(true);
  expect(existsSync(join(root, ".variables"))).toBe(false);
  // FileIO().export(df, 'titanic_clean.csv') writes next to the project with pandas' index
  // column, as in Mage; the gaps hold the template's median (the middle of the sorted values)
  const out = join(root, "titanic_clean.csv");
  expect(existsSync(out)).toBe(true);
  const lines = readFileSync(out, "utf8").trim().split("\n");
  expect(lines[0]).toBe(",Age,Fare,Parch,Pclass,SibSp,Survived");
  expect(lines).toHaveLength(6);
  expect(lines[3]).toBe("2,35.0,7.925,0.0,3,0,1");
  expect(lines[4]).toBe("3,35.0,8.05,0.0,1,1,1");
}, 120_000);
