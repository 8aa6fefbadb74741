/**
 * Python blocks in containers through kiln's own image: `kiln run` with the docker executor and
 * no image named in executor_config runs each block of a Mage-style pipeline (a .py loader, a
 * TypeScript transformer, a .py exporter with a @test) as a container of the image the
 * repository's Dockerfile builds (KILN_DOCKER_IMAGE points the default at the tests' tag), on
 * podman, against a libSQL server on this machine; outputs cross between Python and TypeScript
 * through the database, and each Python block ran with the image's python3 inside a container.
 * Under CI=true, podman missing fails the file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { stringify } from "yaml";
import { logPath } from "@kiln/core";
import { MANAGED_LABEL } from "@kiln/executor-docker";
import { printedPartition, runKiln, TempDirs } from "../helpers/cli.ts";
import { kilnImage, kilnImageMissing, type KilnImage } from "../helpers/kiln-image.ts";
import { startLibsqlServer, type LibsqlServer } from "../helpers/libsql-server.ts";
import { startPodman, type PodmanEngine } from "../helpers/podman.ts";

const missing = kilnImageMissing();
if (missing) {
  if (process.env.CI === "true") throw new Error(`the image's Python block test needs podman: ${missing}`);
  console.warn(`skipping Python blocks in kiln's image: ${missing}`);
}

const temp = new TempDirs();
let engine: PodmanEngine | null = null;
let sqld: LibsqlServer | null = null;
let image: KilnImage;

beforeAll(async () => {
  if (missing) return;
  image = kilnImage();
  engine = await startPodman();
  sqld = await startLibsqlServer();
}, 900_000);

afterAll(async () => {
  if (engine) {
    const mine = await engine.docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=docker`] } }).catch(() => []);
    await Promise.all(mine.map((c) => engine!.docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
    engine.stop();
  }
  sqld?.stop();
  temp.removeAll();
}, 60_000);

const LOADER = `if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader
import os
import sys


@data_loader
def load_data(*args, **kwargs):
    print(f"loading for {kwargs['ds']} in a container: {os.path.exists('/run/.containerenv')}")
    return {'numbers': [1, 2, 3], 'python': sys.executable, 'in_container': os.path.exists('/run/.containerenv')}
`;

const TRANSFORMER = `import { transformer } from "@kiln/core";

export default transformer((loaded: { numbers: number[] }) => ({ doubled: loaded.numbers.map((n) => n * 2), runtime: typeof Bun === "object" ? "bun" : "other" }));
`;

const EXPORTER = `if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test
import os


@data_exporter
def export_data(data, *args, **kwargs):
    total = sum(data['doubled'])
    print(f"total {total} from {data['runtime']}")
    return {'total': total, 'pipeline': kwargs['pipeline_uuid'], 'in_container': os.path.exists('/run/.containerenv')}


@test
def test_total(output, *args) -> None:
    assert output['total'] == 12, f"total is {output['total']}"
`;

describe.skipIf(missing !== null)("Python blocks in kiln's image (docker executor, no image named)", () => {
  test("a .py loader, a TypeScript transformer and a .py exporter each run in a container of the image; outputs cross through the database", async () => {
    const root = temp.make("kiln-image-py-");
    const { writeFiles } = await import("../helpers/cli.ts");
    writeFiles(root, {
      "kiln.yaml": stringify({
        executor_type: "docker",
        output_store: { type: "database" },
        executors: {
          // no image: kiln's own (KILN_DOCKER_IMAGE below); the container shares this machine's network to reach sqld
          docker: { socket_path: engine!.socketPath, network: "host", volumes: [`${root}:/project`] },
        },
      }),
      "pipelines/numbers/metadata.yaml": stringify({
        blocks: [
          { uuid: "load_numbers", type: "data_loader" },
          { uuid: "double", type: "transformer", upstream_blocks: ["load_numbers"] },
          { uuid: "export_total", type: "data_exporter", upstream_blocks: ["double"] },
        ],
      }),
      "data_loaders/load_numbers.py": LOADER,
      "transformers/double.ts": TRANSFORMER,
      "data_exporters/export_total.py": EXPORTER,
    });
    const result = await runKiln(["run", root, "numbers"], { KILN_DATABASE_URL: sqld!.url, KILN_DOCKER_IMAGE: image.tag });
    expect([result.code, result.code === 0 ? "" : `${result.stdout}\n${result.stderr}`]).toEqual([0, ""]);
    const partition = printedPartition(result.stdout);

    const db = createClient({ url: sqld!.url });
    try {
      const blocks = await db.execute("SELECT block_uuid, status, executor_type, executor_handle FROM block_runs ORDER BY id");
      expect(blocks.rows.map((r) => [r.block_uuid, r.status, r.executor_type])).toEqual([
        ["load_numbers", "completed", "docker"],
        ["double", "completed", "docker"],
        ["export_total", "completed", "docker"],
      ]);
      const stored = await db.execute("SELECT block_uuid, value FROM block_outputs ORDER BY block_uuid");
      expect(Object.fromEntries(stored.rows.map((r) => [String(r.block_uuid), JSON.parse(String(r.value)) as unknown]))).toEqual({
        // the image's python3 (Debian's), inside a container
        load_numbers: { numbers: [1, 2, 3], python: "/usr/bin/python3", in_container: true },
        double: { doubled: [2, 4, 6], runtime: "bun" },
        export_total: { total: 12, pipeline: "numbers", in_container: true },
      });
    } finally {
      db.close();
    }
    // print() inside the container came back into the block run's log
    expect(readFileSync(join(root, logPath("numbers", partition, "load_numbers")), "utf8")).toContain("in a container: True");
    expect(readFileSync(join(root, logPath("numbers", partition, "export_total")), "utf8")).toContain("total 12 from bun");
  }, 300_000);
});
