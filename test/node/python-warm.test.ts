/**
 * Warm Python interpreters: a Python block run gets an interpreter started before it was asked
 * for, which has imported kiln's runner and pandas while it waited; still a fresh interpreter per
 * run, so nothing of one run is there in the next. Both in a warm block process (the local
 * executor's default) and in kiln's own process (in_process, and Mage's callbacks and
 * conditionals). Uses Debian's /usr/bin/python3 with python3-pandas, as the DataFrame tests do.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type PipelineRun } from "@kiln/core";
import { RunEngine } from "@kiln/core/engine";
import { loadUserProject, openProject, type OpenProject } from "../../cli/src/project.ts";
import { TempDirs } from "../helpers/cli.ts";

const temp = new TempDirs();
let open: OpenProject;
let engine: RunEngine;

// the block reports, before importing anything itself, what its interpreter had imported already
const PROBE = `import os, sys
if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader

seen = sys.modules.get('kiln_probe_state')

@data_loader
def load(*args, **kwargs):
    sys.modules['kiln_probe_state'] = sys
    return {"pid": os.getpid(), "warm": "--warm" in sys.argv, "pandas": "pandas" in sys.modules, "leaked": seen is not None}
`;

beforeAll(async () => {
  const root = temp.project({
    "kiln.yaml": "executor_type: local\npython: /usr/bin/python3\n",
    "pipelines/ts_first/metadata.yaml": "blocks:\n  - uuid: ts_block\n    type: custom\n",
    "custom/ts_block.js": "export default function tsBlock(ctx) { return 1; }\n",
    "pipelines/probe/metadata.yaml": "blocks:\n  - uuid: probe\n    type: data_loader\n",
    "pipelines/probe_in_process/metadata.yaml": "blocks:\n  - uuid: probe\n    type: data_loader\n    executor_config:\n      in_process: true\n",
    "data_loaders/probe.py": PROBE,
  });
  const project = await loadUserProject(root);
  const saved = process.env.KILN_DATABASE_URL;
  process.env.KILN_DATABASE_URL = `file:${join(root, "kiln.db")}`;
  let opening: Promise<OpenProject>;
  try {
    opening = openProject(project);
  } finally {
    if (saved === undefined) delete process.env.KILN_DATABASE_URL;
    else process.env.KILN_DATABASE_URL = saved;
  }
  open = await opening;
  engine = new RunEngine({ store: open.store, project, executors: open.executors, outputs: open.runtime.outputs });
  // a first block run starts the warm block processes, and each its spare interpreter
  expect((await runPipeline("ts_first")).status).toBe("completed");
});

afterAll(() => {
  open?.close();
  temp.removeAll();
});

async function runPipeline(pipelineUuid: string): Promise<PipelineRun> {
  const run = await open.store.createPipelineRun({ pipelineUuid, executionDate: Date.now(), variables: {} });
  if (!run) throw new Error("no run created");
  return engine.execute(run.id);
}

interface Probe {
  pid: number;
  warm: boolean;
  pandas: boolean;
  leaked: boolean;
}

async function probe(pipelineUuid: string): Promise<Probe> {
  const final = await runPipeline(pipelineUuid);
  expect(final.status).toBe("completed");
  return (await open.runtime.outputs.read(pipelineUuid, final.executionPartition, "probe")) as Probe;
}

describe("warm Python interpreters", () => {
  test("in a warm block process: the interpreter was started ahead, with pandas imported; each run gets a new one", async () => {
    const first = await probe("probe");
    const second = await probe("probe");
    for (const p of [first, second]) {
      expect(p.warm).toBe(true);
      expect(p.pandas).toBe(true);
      expect(p.leaked).toBe(false);
    }
    expect(second.pid).not.toBe(first.pid);
  }, 120_000);

  test("in kiln's own process (in_process): the second run's interpreter was waiting, with pandas; none is reused", async () => {
    const first = await probe("probe_in_process");
    const second = await probe("probe_in_process");
    // the first run started kiln's spare; the second was handed it
    expect(second.warm).toBe(true);
    expect(second.pandas).toBe(true);
    expect(first.leaked).toBe(false);
    expect(second.leaked).toBe(false);
    expect(second.pid).not.toBe(first.pid);
  }, 120_000);
});
