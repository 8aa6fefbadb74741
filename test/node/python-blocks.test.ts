/**
 * Python blocks with the machine's real python3, through kiln's runner: Mage's decorators, the
 * kwargs, outputs crossing TypeScript and Python blocks, @test, tracebacks, logs, sensors,
 * callbacks and conditions, trigger_pipeline, and cancel/timeout killing the process tree. Blocks
 * run both in their own `kiln run-block` process and in-process (the interpreter in a group of its own).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { ExecutorRegistry, logPath, outputPath, triggerPipeline, type BlockJob, type PipelineRun } from "@kiln/core";
import { RunEngine } from "@kiln/core/engine";
import { isDataFrameJson, moduleAddonRunner, pythonAddonRunner, runPythonAddon } from "@kiln/core/runtime";
import { localExecutor } from "@kiln/executor-local";
import { missingPythonMessage, resolvePythonInterpreter } from "@kiln/node";
import { CLI_MAIN, metadata, projectFixture, until, type Fixture } from "../helpers/fixtures.ts";
import { serverFixture } from "../helpers/server.ts";
import { runKiln, TempDirs } from "../helpers/cli.ts";

const IN_PROCESS = "executor_config:\n  in_process: true\n";
const GUARD = (name: string) => `if '${name}' not in globals():\n    from mage_ai.data_preparation.decorators import ${name}\n`;
const temps = new TempDirs();
afterAll(() => temps.removeAll());

async function newRun(fx: Fixture, pipelineUuid = "p", extra: Partial<Parameters<Fixture["store"]["createPipelineRun"]>[0]> = {}): Promise<PipelineRun> {
  const run = await fx.store.createPipelineRun({ pipelineUuid, executionDate: Date.UTC(2026, 4, 1, 6, 30), ...extra });
  if (!run) throw new Error("run not created");
  return run;
}

function output(fx: Fixture, run: PipelineRun, block: string): unknown {
  return JSON.parse(readFileSync(join(fx.root, outputPath(run.pipelineUuid, run.executionPartition, block)), "utf8"));
}

function log(fx: Fixture, run: PipelineRun, block: string): string {
  const path = join(fx.root, logPath(run.pipelineUuid, run.executionPartition, block));
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}

async function blockRuns(fx: Fixture, runId: number): Promise<Record<string, { status: string; error: string | null }>> {
  const runs = await fx.store.getBlockRuns(runId);
  return Object.fromEntries(runs.map((b) => [b.blockUuid, { status: b.status, error: b.error }]));
}

async function withFixture(files: Record<string, string>, body: (fx: Fixture) => Promise<void>): Promise<void> {
  const fx = await projectFixture(files);
  try {
    await body(fx);
  } finally {
    fx.cleanup();
  }
}


function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

const CHAIN: Record<string, string> = {
  "kiln.yaml": "variables:\n  greeting: hello\n",
  "pipelines/p/metadata.yaml": metadata([
    { uuid: "load", type: "data_loader" },
    { uuid: "shape", type: "transformer", upstream_blocks: ["load"] },
    { uuid: "total", type: "transformer", upstream_blocks: ["shape", "load"] },
    { uuid: "report", type: "data_exporter", upstream_blocks: ["total"] },
  ]),
  // the seeds' loader: Mage's template, reading kwargs['execution_date']
  "data_loaders/load.py": `${GUARD("data_loader")}${GUARD("test")}
import logging

@data_loader
def load_data(*args, **kwargs):
    print('loading for', kwargs['execution_date'].isoformat())
    logging.getLogger('loader').info('three rows')
    return {'rows': [1, 2, 3], 'day': kwargs['execution_date'].strftime('%Y-%m-%d'), 'greeting': kwargs['greeting']}


@test
def test_output(output, *args) -> None:
    assert output is not None, 'The output is undefined'
`,
  "transformers/shape.ts": "export default (load: { rows: number[] }) => ({ doubled: load.rows.map((x) => x * 2) });\n",
  // without the guard, as some projects import it: the shim's mark finds the function
  "transformers/total.py": `from mage_ai.data_preparation.decorators import transformer

@transformer
def total(shape, load):
    return {'sum': sum(shape['doubled']), 'count': len(load['rows'])}
`,
  "data_exporters/report.ts": "export default (total: { sum: number; count: number }) => ({ line: `${total.count} rows, sum ${total.sum}` });\n",
};

describe("Python blocks in a pipeline with TypeScript blocks", () => {
  for (const mode of ["own process (kiln run-block)", "in process"] as const) {
    test(`outputs cross TS -> Python -> TS; print and logging reach the log (${mode})`, async () => {
      const files = { ...CHAIN, "kiln.yaml": CHAIN["kiln.yaml"] + (mode === "in process" ? IN_PROCESS : "") };
      await withFixture(files, async (fx) => {
        const run = await newRun(fx);
        const final = await fx.engine.execute(run.id);
        expect(final.status).toBe("completed");
        expect(output(fx, run, "load")).toEqual({ rows: [1, 2, 3], day: "2026-05-01", greeting: "hello" });
        expect(output(fx, run, "total")).toEqual({ sum: 12, count: 3 });
        expect(output(fx, run, "report")).toEqual({ line: "3 rows, sum 12" });
        const lines = log(fx, run, "load");
        expect(lines).toContain("STDOUT loading for 2026-05-01T06:30:00+00:00");
        expect(lines).toContain("INFO loader: three rows");
        expect(lines).toContain("1/1 tests passed.");
      });
    });
  }
});

describe("Mage's kwargs", () => {
  test("the runtime variables of a time trigger's run, and the merged variables", async () => {
    const files = {
      "kiln.yaml": `${IN_PROCESS}variables:\n  region: eu\n  tier: project\n`,
      "pipelines/p/metadata.yaml": `variables:\n  tier: pipeline\n${metadata([{ uuid: "show", type: "custom" }])}`,
      "custom/show.py": `${GUARD("custom")}
import datetime

@custom
def show(*args, **kwargs):
    out = {}
    for key, value in kwargs.items():
        if key == 'logger':
            out[key] = type(value).__name__
        elif isinstance(value, datetime.datetime):
            out[key] = ['datetime', value.isoformat()]
        else:
            out[key] = value
    out['args'] = list(args)
    return out
`,
    };
    await withFixture(files, async (fx) => {
      const schedule = await fx.store.createPipelineSchedule({
        name: "every_hour",
        pipelineUuid: "p",
        scheduleType: "time",
        scheduleInterval: "@hourly",
        startTime: Date.UTC(2026, 0, 1),
        variables: { tier: "trigger" },
      });
      const run = await newRun(fx, "p", { pipelineScheduleId: schedule.id, executionDate: Date.UTC(2026, 4, 1, 6), variables: { from_run: 1 } });
      expect((await fx.engine.execute(run.id)).status).toBe("completed");
      const [blockRun] = await fx.store.getBlockRuns(run.id);
      expect(output(fx, run, "show")).toEqual({
        args: [],
        region: "eu",
        tier: "trigger",
        from_run: 1,
        ds: "2026-05-01",
        hr: "06",
        env: "prod",
        event: {},
        execution_date: ["datetime", "2026-05-01T06:00:00+00:00"],
        execution_partition: run.executionPartition,
        pipeline_run_id: run.id,
        block_run_id: blockRun!.id,
        pipeline_uuid: "p",
        block_uuid: "show",
        trigger_name: "every_hour",
        interval_start_datetime: ["datetime", "2026-05-01T06:00:00+00:00"],
        interval_end_datetime: ["datetime", "2026-05-01T07:00:00+00:00"],
        interval_seconds: 3600,
        interval_start_datetime_previous: ["datetime", "2026-05-01T05:00:00+00:00"],
        logger: "Logger",
      });
    });
  });

  test("a function without **kwargs gets only its upstream outputs, as Mage calls it", async () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "a", type: "data_loader" },
        { uuid: "b", type: "data_loader" },
        { uuid: "pair", type: "transformer", upstream_blocks: ["b", "a"] },
      ]),
      "data_loaders/a.py": `${GUARD("data_loader")}\n@data_loader\ndef a():\n    return 'A'\n`,
      "data_loaders/b.py": `${GUARD("data_loader")}\n@data_loader\ndef b():\n    return 'B'\n`,
      "transformers/pair.py": `${GUARD("transformer")}\n@transformer\ndef pair(first, second):\n    return [first, second]\n`,
    };
    await withFixture(files, async (fx) => {
      const run = await newRun(fx);
      expect((await fx.engine.execute(run.id)).status).toBe("completed");
      expect(output(fx, run, "pair")).toEqual(["B", "A"]);
    });
  });
});

describe("failures", () => {
  test("an exception's traceback is the block run's error; a failed @test fails the block with its message", async () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([{ uuid: "boom", type: "data_loader" }]),
      "pipelines/t/metadata.yaml": metadata([{ uuid: "checked", type: "transformer" }]),
      "data_loaders/boom.py": `${GUARD("data_loader")}
def parse(text):
    return int(text)

@data_loader
def load(*args, **kwargs):
    return parse('not a number')
`,
      "transformers/checked.py": `${GUARD("transformer")}${GUARD("test")}
@transformer
def rows(*args, **kwargs):
    return [1, 2]

@test
def test_count(output, *args):
    assert len(output) == 3, f'expected 3 rows, got {len(output)}'

@test
def test_not_empty(output, *args):
    assert output
`,
    };
    await withFixture(files, async (fx) => {
      const run = await newRun(fx);
      expect((await fx.engine.execute(run.id)).status).toBe("failed");
      const error = (await blockRuns(fx, run.id)).boom!.error!;
      expect(error).toStartWith("Traceback (most recent call last):");
      expect(error).toContain(`File "${join(fx.root, "data_loaders/boom.py")}", line 9, in load`);
      expect(error).toContain("line 5, in parse");
      expect(error).toEndWith("ValueError: invalid literal for int() with base 10: 'not a number'");
      // the runner's own frames are not the author's business
      expect(error).not.toContain("kiln_runner");

      const tested = await newRun(fx, "t");
      expect((await fx.engine.execute(tested.id)).status).toBe("failed");
      expect((await blockRuns(fx, tested.id)).checked!.error).toBe("1 of 2 tests failed for block checked: test_count: expected 3 rows, got 2");
      expect(existsSync(join(fx.root, outputPath("t", tested.executionPartition, "checked")))).toBe(false);
      expect(log(fx, tested, "checked")).toContain("FAIL: test_count (block: checked)");
    });
  });

  test("in its own process too, the error keeps the whole traceback", async () => {
    const files = {
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml": metadata([{ uuid: "boom", type: "data_loader" }]),
      "data_loaders/boom.py": `${GUARD("data_loader")}\n@data_loader\ndef load(*args, **kwargs):\n    raise RuntimeError('the source is down')\n`,
    };
    await withFixture(files, async (fx) => {
      const run = await newRun(fx);
      expect((await fx.engine.execute(run.id)).status).toBe("failed");
      const error = (await blockRuns(fx, run.id)).boom!.error!;
      expect(error).toStartWith("Traceback (most recent call last):\n");
      expect(error).toContain("line 6, in load");
      expect(error).toEndWith("RuntimeError: the source is down");
    });
  });

  test("a file with no decorated function says which decorator it needs", async () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([{ uuid: "plain", type: "data_exporter" }]),
      "data_exporters/plain.py": "def export(*args, **kwargs):\n    return 1\n",
    };
    await withFixture(files, async (fx) => {
      const run = await newRun(fx);
      expect((await fx.engine.execute(run.id)).status).toBe("failed");
      expect((await blockRuns(fx, run.id)).plain!.error).toContain("data_exporters/plain.py: no function is decorated with @data_exporter");
    });
  });

  test("an output that is not JSON names its type", async () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([{ uuid: "odd", type: "data_loader" }]),
      "data_loaders/odd.py": `${GUARD("data_loader")}\nclass Thing:\n    pass\n\n@data_loader\ndef load(*args, **kwargs):\n    return {'thing': Thing()}\n`,
    };
    await withFixture(files, async (fx) => {
      const run = await newRun(fx);
      expect((await fx.engine.execute(run.id)).status).toBe("failed");
      expect((await blockRuns(fx, run.id)).odd!.error).toContain("output['thing']: a __mage_block__.Thing cannot be carried between blocks");
    });
  });
});

describe("interpreter", () => {
  test("KILN_PYTHON wins over kiln.yaml's python, which wins over python3 on PATH; a missing one is named", () => {
    const root = temps.make();
    expect(resolvePythonInterpreter(root, null, { PATH: "/usr/bin" })).toEqual({ requested: "python3", from: "the default (python3 on PATH)", path: "/usr/bin/python3" });
    expect(resolvePythonInterpreter(root, "/usr/bin/python3", { PATH: "" }).path).toBe("/usr/bin/python3");
    expect(resolvePythonInterpreter(root, "/usr/bin/python3", { PATH: "", KILN_PYTHON: "/nowhere/python" })).toEqual({
      requested: "/nowhere/python",
      from: "KILN_PYTHON",
      path: null,
    });
    const missing = resolvePythonInterpreter(root, "python3.99", { PATH: "/usr/bin" });
    expect(missing.path).toBeNull();
    expect(missingPythonMessage(missing, ["p/load (data_loaders/load.py)"])).toBe(
      "Python blocks need an interpreter, and python3.99 (kiln.yaml python) was not found (set KILN_PYTHON or kiln.yaml's python to one): p/load (data_loaders/load.py)",
    );
  });

  test("kiln run with no interpreter is a usage error at load naming the blocks that need it", async () => {
    const root = temps.project({
      "kiln.yaml": "python: ./venv/bin/python3\n",
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "load", type: "data_loader" },
        { uuid: "ts", type: "transformer", upstream_blocks: ["load"] },
      ]),
      "data_loaders/load.py": `${GUARD("data_loader")}\n@data_loader\ndef load():\n    return 1\n`,
      "transformers/ts.ts": "export default (x: number) => x;\n",
    });
    const result = await runKiln(["run", root, "p"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("./venv/bin/python3 (kiln.yaml python) was not found");
    expect(result.stderr).toContain("p/load (data_loaders/load.py)");
    expect(result.stderr).not.toContain("p/ts");
    expect(existsSync(join(root, ".kiln/kiln.db"))).toBe(false);
  });
});


describe("each decorator", () => {
  test("@sensor is polled until it holds; @custom; get_secret_value and get_variable answer from kiln", async () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "wait_for_file", type: "sensor", configuration: { poll_interval: 0.05 } },
        { uuid: "seed", type: "data_loader" },
        { uuid: "peek", type: "custom", upstream_blocks: ["wait_for_file", "seed"] },
      ]),
      "sensors/wait_for_file.py": `${GUARD("sensor")}
import os

@sensor
def check(*args, **kwargs):
    count = int(open('polls').read()) + 1 if os.path.exists('polls') else 1
    open('polls', 'w').write(str(count))
    return count >= 3
`,
      "data_loaders/seed.ts": "export default () => ({ answer: 42 });\n",
      "custom/peek.py": `${GUARD("custom")}
from mage_ai.data_preparation.shared.secrets import get_secret_value
from mage_ai.data_preparation.variable_manager import get_variable

@custom
def peek(sensed, seed, *args, **kwargs):
    again = get_variable(kwargs['pipeline_uuid'], 'seed', 'output_0')
    return {'sensed': sensed, 'seed': seed, 'again': again, 'secret': get_secret_value('api_token')}
`,
    };
    await withFixture(files, async (fx) => {
      const run = await newRun(fx);
      expect((await fx.engine.execute(run.id)).status).toBe("completed");
      expect(readFileSync(join(fx.root, "polls"), "utf8")).toBe("3");
      expect(log(fx, run, "wait_for_file")).toContain("sensor condition not met (poll 2); next poll in 0.05 s");
      expect(output(fx, run, "peek")).toEqual({ sensed: true, seed: { answer: 42 }, again: { answer: 42 }, secret: "secret:api_token" });
    });
  });

  test("@callback (bare, 'success', 'failure'), @on_success/@on_failure and @condition, as the engine calls them", async () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([{ uuid: "load", type: "data_loader" }]),
      "data_loaders/load.py": `${GUARD("data_loader")}\n@data_loader\ndef load(*args, **kwargs):\n    return {'rows': 3}\n`,
      "callbacks/load_callback.py": `${GUARD("callback")}
import json
from mage_ai.data_preparation.decorators import on_success, on_failure

def record(name, value):
    with open('calls.jsonl', 'a') as f:
        f.write(json.dumps([name, value]) + '\\n')

@callback
def bare(parent_block_data, **kwargs):
    record('bare', parent_block_data)

@callback('success')
def succeeded(parent_block_data, **kwargs):
    record('success', [parent_block_data, kwargs['block_uuid']])

@callback('failure')
def failed(parent_block_data, **kwargs):
    record('failure', kwargs['__error'])

@on_success
def legacy_success(**kwargs):
    record('legacy_success', kwargs['pipeline_uuid'])

@on_failure
def legacy_failure(**kwargs):
    record('legacy_failure', kwargs['__error'])
`,
      "conditionals/only_prod.py": `${GUARD("condition")}
@condition
def evaluate_condition(*args, **kwargs) -> bool:
    return kwargs.get('env') == 'prod' and kwargs.get('run_it', True)
`,
    };
    await withFixture(files, async (fx) => {
      const run = await newRun(fx);
      expect((await fx.engine.execute(run.id)).status).toBe("completed");
      const [blockRun] = await fx.store.getBlockRuns(run.id);
      const job: BlockJob = {
        projectRoot: fx.root,
        pipelineUuid: "p",
        blockUuid: "load",
        blockRunId: blockRun!.id,
        pipelineRunId: run.id,
        attempt: 1,
        executionDate: new Date(run.executionDate).toISOString(),
        executionPartition: run.executionPartition,
        variables: {},
        event: null,
        inputs: [],
        executorType: "local",
        executorConfig: {},
        timeout: null,
      };
      const parentOutput = output(fx, run, "load");
      const calls = () => readFileSync(join(fx.root, "calls.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as unknown);
      const success = await runPythonAddon(job, fx.runtime, { modulePath: "callbacks/load_callback.py", mode: "callback", callbackStatus: "success", inputs: [parentOutput] });
      expect(success.called).toBe(3);
      expect(calls()).toEqual([["legacy_success", "p"], ["bare", { rows: 3 }], ["success", [{ rows: 3 }, "load"]]]);
      const failure = await runPythonAddon(job, fx.runtime, { modulePath: "callbacks/load_callback.py", mode: "callback", callbackStatus: "failure", inputs: [parentOutput], error: "ValueError: bad row" });
      expect(failure.called).toBe(2);
      expect(calls().slice(3)).toEqual([["legacy_failure", "ValueError: bad row"], ["failure", "ValueError: bad row"]]);

      expect((await runPythonAddon(job, fx.runtime, { modulePath: "conditionals/only_prod.py", mode: "condition", inputs: [] })).condition).toBe(true);
      const skipped = { ...job, variables: { run_it: false } };
      expect((await runPythonAddon(skipped, fx.runtime, { modulePath: "conditionals/only_prod.py", mode: "condition", inputs: [] })).condition).toBe(false);
    });
  });
});

describe("Python callbacks and conditionals through the engine", () => {
  test("a false @condition makes its block condition_failed; @callback('success') and ('failure') run after their parent", async () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": `${metadata([
        { uuid: "load", type: "data_loader" },
        { uuid: "gated", type: "transformer", upstream_blocks: ["load"] },
      ])}callbacks:
  - uuid: notes
    upstream_blocks: [load]
conditionals:
  - uuid: never
    upstream_blocks: [gated]
`,
      "pipelines/q/metadata.yaml": `${metadata([{ uuid: "boom", type: "custom" }])}callbacks:\n  - uuid: notes\n    upstream_blocks: [boom]\n`,
      "data_loaders/load.py": `${GUARD("data_loader")}\n@data_loader\ndef load(*args, **kwargs):\n    return [1, 2]\n`,
      "transformers/gated.py": `${GUARD("transformer")}\n@transformer\ndef gated(rows, *args, **kwargs):\n    return rows\n`,
      "custom/boom.py": `${GUARD("custom")}\n@custom\ndef boom(*args, **kwargs):\n    raise KeyError('missing')\n`,
      "callbacks/notes.py": `${GUARD("callback")}
import json

@callback('success')
def ok(parent_block_data, **kwargs):
    open(f"ok_{kwargs['block_uuid']}.json", 'w').write(json.dumps(parent_block_data))

@callback('failure')
def failed(parent_block_data, **kwargs):
    open(f"failed_{kwargs['block_uuid']}.txt", 'w').write(kwargs['__error'])
`,
      "conditionals/never.py": `${GUARD("condition")}\n@condition\ndef evaluate_condition(rows, *args, **kwargs):\n    return len(rows) > 5\n`,
    };
    await withFixture(files, async (fx) => {
      const executors = new ExecutorRegistry().register(localExecutor({ runtime: fx.runtime, command: [process.execPath, CLI_MAIN] }));
      const engine = new RunEngine({ store: fx.store, project: fx.project, executors, outputs: fx.runtime.outputs, logs: fx.runtime.logs, addons: moduleAddonRunner(fx.runtime, pythonAddonRunner) });
      const run = await newRun(fx);
      expect((await engine.execute(run.id)).status).toBe("completed");
      const runs = await blockRuns(fx, run.id);
      expect(runs.load!.status).toBe("completed");
      expect(runs.gated!.status).toBe("condition_failed");
      const failing = await newRun(fx, "q");
      expect((await engine.execute(failing.id)).status).toBe("failed");
      expect((await blockRuns(fx, failing.id)).boom!.status).toBe("failed");
      expect(JSON.parse(readFileSync(join(fx.root, "ok_load.json"), "utf8"))).toEqual([1, 2]);
      expect(readFileSync(join(fx.root, "failed_boom.txt"), "utf8")).toContain("KeyError: 'missing'");
    });
  });
});

const SYSTEM_PYTHON = "/usr/bin/python3";
const systemHasPandas = spawnSync(SYSTEM_PYTHON, ["-c", "import pandas"]).status === 0;

describe("DataFrames (Debian's python3-pandas, for /usr/bin/python3 named in kiln.yaml)", () => {
  test.skipIf(!systemHasPandas)("a DataFrame goes Python -> TS -> Python as tagged records and comes back a DataFrame; FileIO loads and exports CSV and JSON", async () => {
    const files = {
      "kiln.yaml": `${IN_PROCESS}python: ${SYSTEM_PYTHON}\n`,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "frame", type: "data_loader" },
        { uuid: "tag", type: "transformer", upstream_blocks: ["frame"] },
        { uuid: "check", type: "data_exporter", upstream_blocks: ["tag", "frame"] },
      ]),
      "data_loaders/frame.py": `${GUARD("data_loader")}
import pandas as pd
from mage_ai.io.file import FileIO

@data_loader
def load(*args, **kwargs):
    df = pd.DataFrame({
        'id': [1, 2, 3],
        'price': [1.5, None, 3.25],
        'name': ['a', 'b', 'c'],
        'at': pd.to_datetime(['2026-05-01T00:00:00', '2026-05-02T12:00:00', '2026-05-03T00:00:00']),
    })
    FileIO().export(df, 'frame.csv', index=False)
    FileIO().export(df[['id', 'name']], 'frame.json', orient='records')
    back = FileIO().load('frame.csv', parse_dates=['at'])
    assert back.equals(df), back
    assert list(FileIO().load('frame.json')['name']) == ['a', 'b', 'c']
    return df
`,
      "transformers/tag.ts": `type Frame = { $type: string; columns: string[]; records: Record<string, unknown>[] };
export default (frame: Frame) => {
  if (frame.$type !== "pandas.DataFrame") throw new Error("not a DataFrame: " + JSON.stringify(frame));
  return { ...frame, columns: [...frame.columns, "tagged"], records: frame.records.map((r) => ({ ...r, tagged: true })) };
};
`,
      "data_exporters/check.py": `${GUARD("data_exporter")}
import pandas as pd

@data_exporter
def check(tagged, frame, *args, **kwargs):
    assert isinstance(tagged, pd.DataFrame) and isinstance(frame, pd.DataFrame)
    return {
        'columns': list(tagged.columns),
        'dtypes': {c: str(t) for c, t in frame.dtypes.items()},
        'tagged': bool(tagged['tagged'].all()),
        'total': float(frame['price'].sum()),
        'nan_kept': bool(frame['price'].isna().iloc[1]),
        'first_at': frame['at'].iloc[0].isoformat(),
    }
`,
    };
    await withFixture(files, async (fx) => {
      const run = await newRun(fx);
      const final = await fx.engine.execute(run.id);
      expect(await blockRuns(fx, run.id)).toEqual({ frame: { status: "completed", error: null }, tag: { status: "completed", error: null }, check: { status: "completed", error: null } });
      expect(final.status).toBe("completed");
      const stored = output(fx, run, "frame");
      expect(isDataFrameJson(stored)).toBe(true);
      expect(stored).toMatchObject({
        $type: "pandas.DataFrame",
        columns: ["id", "price", "name", "at"],
        records: [
          { id: 1, price: 1.5, name: "a", at: "2026-05-01T00:00:00.000" },
          { id: 2, price: null, name: "b", at: "2026-05-02T12:00:00.000" },
          { id: 3, price: 3.25, name: "c", at: "2026-05-03T00:00:00.000" },
        ],
      });
      expect(output(fx, run, "check")).toEqual({
        columns: ["id", "price", "name", "at", "tagged"],
        dtypes: { id: "int64", price: "float64", name: "object", at: "datetime64[ns]" },
        tagged: true,
        total: 4.75,
        nan_kept: true,
        first_at: "2026-05-01T00:00:00",
      });
    });
  });
});

const TREE_BLOCK = `${GUARD("data_loader")}
import json, os, subprocess, time

@data_loader
def hang(*args, **kwargs):
    child = subprocess.Popen(['sleep', '600'])
    with open('tree.pids.tmp', 'w') as f:
        json.dump({'self': os.getpid(), 'child': child.pid}, f)
    os.rename('tree.pids.tmp', 'tree.pids')
    while True:
        time.sleep(0.05)
`;

describe("timeout and cancel kill the Python process tree", () => {
  for (const mode of ["in process", "own process (kiln run-block)"] as const) {
    test(`cancel (${mode})`, async () => {
      const files = {
        "kiln.yaml": mode === "in process" ? IN_PROCESS : "",
        "pipelines/p/metadata.yaml": metadata([{ uuid: "hang", type: "data_loader" }]),
        "data_loaders/hang.py": TREE_BLOCK,
      };
      await withFixture(files, async (fx) => {
        const run = await newRun(fx);
        const done = fx.engine.execute(run.id);
        const pidsFile = join(fx.root, "tree.pids");
        await until(() => existsSync(pidsFile), "the block to start its child", 60_000);
        const pids = JSON.parse(readFileSync(pidsFile, "utf8")) as { self: number; child: number };
        expect(pidAlive(pids.self) && pidAlive(pids.child)).toBe(true);
        expect(fx.engine.cancel(run.id)).toBe(true);
        expect((await done).status).toBe("cancelled");
        await until(() => !pidAlive(pids.self) && !pidAlive(pids.child), "the interpreter and its child to end", 20_000);
        expect((await blockRuns(fx, run.id)).hang!.status).toBe("cancelled");
      });
    });
  }

  test("a block timeout fails the block run and kills the interpreter and its child", async () => {
    const files = {
      "kiln.yaml": IN_PROCESS,
      // long enough for the interpreter to start on a loaded machine; the test waits for the timeout
      "pipelines/p/metadata.yaml": metadata([{ uuid: "hang", type: "data_loader", timeout: 15 }]),
      "data_loaders/hang.py": TREE_BLOCK,
    };
    await withFixture(files, async (fx) => {
      const run = await newRun(fx);
      const done = fx.engine.execute(run.id);
      const pidsFile = join(fx.root, "tree.pids");
      await until(() => existsSync(pidsFile), "the block to start its child", 15_000);
      const pids = JSON.parse(readFileSync(pidsFile, "utf8")) as { self: number; child: number };
      expect((await done).status).toBe("failed");
      const blockRun = (await blockRuns(fx, run.id)).hang!;
      expect(blockRun.status).toBe("failed");
      expect(blockRun.error).toMatch(/tim(ed out|eout)/i);
      await until(() => !pidAlive(pids.self) && !pidAlive(pids.child), "the interpreter and its child to end", 20_000);
    });
  });
});

describe("the seeds' trigger_pipeline exporter", () => {
  const SEED_EXPORTER = `from mage_ai.orchestration.triggers.api import trigger_pipeline

if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter

@data_exporter
def trigger_downstream_pipeline(*args, **kwargs):
    # Trigger another pipeline when this one completes
    pipeline_run = trigger_pipeline(
        'downstream_pipeline',
        variables={'upstream_date': kwargs['execution_date']},
        check_status=True,
        poll_interval=0.1,
        error_on_failure=True,
        schedule_name=kwargs.get('schedule_name'),
        verbose=True,
    )
    return {'pipeline_run_id': pipeline_run.id, 'status': pipeline_run.status}
`;
  const files = {
    "kiln.yaml": "",
    "pipelines/downstream_pipeline/metadata.yaml": metadata([{ uuid: "echo", type: "data_loader" }], "executor_config:\n  in_process: true\n"),
    "data_loaders/echo.py": `${GUARD("data_loader")}\n@data_loader\ndef echo(*args, **kwargs):\n    return {'upstream_date': kwargs['upstream_date']}\n`,
    "pipelines/upstream/metadata.yaml": metadata([{ uuid: "trigger_downstream", type: "data_exporter" }], "executor_config:\n  in_process: true\n"),
    "pipelines/upstream_process/metadata.yaml": metadata([{ uuid: "trigger_downstream", type: "data_exporter" }]),
    "data_exporters/trigger_downstream.py": SEED_EXPORTER,
  };

  test("starts the downstream pipeline and waits for it with check_status=True (in process, and from kiln run-block)", async () => {
    const s = await serverFixture(files);
    try {
      for (const [pipeline, scheduleName] of [["upstream", null], ["upstream_process", "from_python"]] as const) {
        const upstream = await triggerPipeline({ store: s.store, project: s.project }, pipeline, {
          variables: scheduleName ? { schedule_name: scheduleName } : {},
          checkStatus: true,
          pollInterval: 0.1,
        });
        expect(upstream.status).toBe("completed");
        const result = (await s.runtime.outputs.read(pipeline, upstream.executionPartition, "trigger_downstream")) as { pipeline_run_id: number; status: string };
        // the block saw the downstream run completed before it returned
        expect(result.status).toBe("completed");
        const downstream = (await s.store.getPipelineRun(result.pipeline_run_id))!;
        expect(downstream.pipelineUuid).toBe("downstream_pipeline");
        expect(downstream.status).toBe("completed");
        const date = new Date(upstream.executionDate).toISOString().replace("Z", "+00:00").replace(".000", "");
        expect(downstream.variables).toEqual({ upstream_date: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/) });
        expect(String(downstream.variables.upstream_date).slice(0, 19)).toBe(date.slice(0, 19));
        expect(await s.runtime.outputs.read("downstream_pipeline", downstream.executionPartition, "echo")).toEqual(downstream.variables);
        const schedule = await s.store.getPipelineSchedule(downstream.pipelineScheduleId!);
        expect(schedule?.name).toBe(scheduleName ?? "trigger_pipeline");
        expect(schedule?.scheduleType).toBe("api");
      }
    } finally {
      await s.close();
    }
  }, 120_000);
});
