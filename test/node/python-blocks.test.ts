/**
 * Python blocks with the machine's real python3, through kiln's runner: Mage's decorators, the
 * kwargs, outputs crossing TypeScript and Python blocks, @test, tracebacks, logs, sensors,
 * callbacks and conditions, trigger_pipeline, and cancel/timeout killing the process tree. Blocks
 * run both in their own `kiln run-block` process and in-process (the interpreter in a group of its own).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { logPath, outputPath, type PipelineRun } from "@kiln/core";
import { missingPythonMessage, resolvePythonInterpreter } from "@kiln/node";
import { metadata, projectFixture, type Fixture } from "../helpers/fixtures.ts";
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

