/**
 * Mage's runtime variables for every block, computed in one place (core's blockRunVariables):
 * a TypeScript block's ctx.variables and a Python block's **kwargs in the same run carry the
 * same ds, hr, execution_date, interval_*, trigger_name and env; backfill runs get them per date.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { outputPath, type PipelineRun } from "@kiln/core";
import { createBackfill, startBackfill } from "@kiln/core/backfill";
import { metadata, projectFixture } from "../helpers/fixtures.ts";

const IN_PROCESS = "executor_config:\n  in_process: true\n";
const MAGE_KEYS = [
  "ds",
  "hr",
  "env",
  "execution_date",
  "execution_partition",
  "pipeline_run_id",
  "pipeline_uuid",
  "trigger_name",
  "interval_start_datetime",
  "interval_end_datetime",
  "interval_seconds",
  "interval_start_datetime_previous",
  "region",
];

const FILES: Record<string, string> = {
  "kiln.yaml": `${IN_PROCESS}variables:\n  region: eu\n`,
  "pipelines/p/metadata.yaml": metadata([
    { uuid: "ts_vars", type: "data_loader" },
    { uuid: "py_vars", type: "data_loader" },
  ]),
  "data_loaders/ts_vars.js": "export default (ctx) => ({ ...ctx.variables });\n",
  "data_loaders/py_vars.py": `if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader
import datetime

@data_loader
def load(*args, **kwargs):
    out = {}
    for key, value in kwargs.items():
        if key == 'logger':
            continue
        # Python gets datetimes; written back as the same ISO strings the TypeScript block sees
        out[key] = value.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.000Z') if isinstance(value, datetime.datetime) else value
    return out
`,
};

function output(root: string, run: PipelineRun, block: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(root, outputPath(run.pipelineUuid, run.executionPartition, block)), "utf8"));
}

const pick = (o: Record<string, unknown>) => Object.fromEntries(MAGE_KEYS.map((k) => [k, o[k]]));

describe("runtime variables in a TypeScript and a Python block of one run", () => {
  test("a run of an @hourly trigger in Europe/Paris: the same values in both languages", async () => {
    const fx = await projectFixture(FILES);
    try {
      const schedule = await fx.store.createPipelineSchedule({
        name: "hourly_paris",
        pipelineUuid: "p",
        scheduleType: "time",
        scheduleInterval: "@hourly",
        timezone: "Europe/Paris",
        startTime: Date.UTC(2026, 0, 1),
      });
      const run = (await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: Date.UTC(2026, 4, 1, 6) }))!;
      expect((await fx.engine.execute(run.id)).status).toBe("completed");
      const ts = output(fx.root, run, "ts_vars");
      const py = output(fx.root, run, "py_vars");
      const expected = {
        ds: "2026-05-01",
        hr: "06",
        env: "prod",
        execution_date: "2026-05-01T06:00:00.000Z",
        execution_partition: `${schedule.id}/20260501T060000`,
        pipeline_run_id: run.id,
        pipeline_uuid: "p",
        trigger_name: "hourly_paris",
        interval_start_datetime: "2026-05-01T06:00:00.000Z",
        interval_end_datetime: "2026-05-01T07:00:00.000Z",
        interval_seconds: 3600,
        interval_start_datetime_previous: "2026-05-01T05:00:00.000Z",
        region: "eu",
      };
      expect(pick(ts)).toEqual(expected);
      expect(pick(py)).toEqual(expected);
      expect(ts.block_uuid).toBe("ts_vars");
      expect(py.block_uuid).toBe("py_vars");
    } finally {
      fx.cleanup();
    }
  }, 60_000);

  test("a backfill's runs get the interval of their own date, in both languages", async () => {
    const fx = await projectFixture(FILES);
    try {
      const backfill = await createBackfill(fx.store, fx.project, {
        name: "may",
        pipelineUuid: "p",
        startDatetime: "2026-05-01T00:00:00Z",
        endDatetime: "2026-05-03T00:00:00Z",
        intervalType: "day",
      });
      await startBackfill(fx.store, backfill.id);
      const runs = (await fx.store.listPipelineRuns({ backfillId: backfill.id }, { limit: 10 })).items.sort((a, b) => a.executionDate - b.executionDate);
      expect(runs.length).toBe(3);
      const second = runs[1]!;
      expect((await fx.engine.execute(second.id)).status).toBe("completed");
      for (const block of ["ts_vars", "py_vars"]) {
        expect(pick(output(fx.root, second, block))).toMatchObject({
          ds: "2026-05-02",
          hr: "00",
          execution_date: "2026-05-02T00:00:00.000Z",
          interval_start_datetime: "2026-05-02T00:00:00.000Z",
          interval_end_datetime: "2026-05-03T00:00:00.000Z",
          interval_seconds: 86400,
          interval_start_datetime_previous: "2026-05-01T00:00:00.000Z",
          trigger_name: null,
        });
      }
    } finally {
      fx.cleanup();
    }
  }, 60_000);
});
