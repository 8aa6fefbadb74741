/**
 * Where block outputs go: Mage's variables_dir resolved as Mage resolves it (MAGE_DATA_DIR, then
 * metadata.yaml, then ~/.mage_data; an absolute folder gets the project's name), and kiln.yaml's
 * output_store.path taken from the project folder.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProjectSettings, mageVariablesDir, normalizePath } from "@kiln/core/project";
import { folderSource } from "@kiln/node";

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

describe("mageVariablesDir", () => {
  const root = "/srv/projects/sales";
  test("an absolute variables_dir gets the project's folder name", () => {
    expect(mageVariablesDir({ variables_dir: "/data/mage" }, root, {})).toBe("/data/mage/sales");
  });
  test("the project's own folder is used as it is", () => {
    expect(mageVariablesDir({ variables_dir: "/srv/projects/sales/" }, root, {})).toBe(root);
  });
  test("a relative variables_dir is taken from the project folder", () => {
    expect(mageVariablesDir({ variables_dir: "./vars/../data" }, root, {})).toBe("/srv/projects/sales/data");
  });
  test("~ is the home folder, and ~/.mage_data the default", () => {
    expect(mageVariablesDir({ variables_dir: "~/.mage_data" }, root, { HOME: "/home/ana" })).toBe("/home/ana/.mage_data/sales");
    expect(mageVariablesDir({}, root, { HOME: "/home/ana" })).toBe("/home/ana/.mage_data/sales");
  });
  test("MAGE_DATA_DIR wins over metadata.yaml", () => {
    expect(mageVariablesDir({ variables_dir: "/data/mage" }, root, { MAGE_DATA_DIR: "/mnt/shared" })).toBe("/mnt/shared/sales");
  });
  test("a remote variables_dir is not a local folder", () => {
    expect(mageVariablesDir({ variables_dir: "s3://bucket/prefix" }, root, {})).toBeNull();
    expect(mageVariablesDir({ variables_dir: "gs://bucket" }, root, {})).toBeNull();
  });
  test("normalizePath", () => {
    expect(normalizePath("/a//b/./c/../d/")).toBe("/a/b/d");
    expect(normalizePath("/..")).toBe("/");
    expect(normalizePath("a/../..")).toBe("..");
  });
});

function project(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "kiln-outputs-folder-"));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe("the project's output folder", () => {
  test("kiln.yaml output_store.path, relative to the project, or under ~", async () => {
    const root = project({ "kiln.yaml": "output_store: {type: local, path: ../outputs}\n" });
    expect((await loadProjectSettings(folderSource(root), {})).outputStore).toEqual({ type: "local", path: normalizePath(join(root, "../outputs")) });
    const home = project({ "kiln.yaml": "output_store: {type: local, path: ~/kiln-outputs}\n" });
    expect((await loadProjectSettings(folderSource(home), { HOME: "/home/ana" })).outputStore).toEqual({ type: "local", path: "/home/ana/kiln-outputs" });
  });
  test("without a path, the project folder (no path in the settings)", async () => {
    const root = project({ "kiln.yaml": "" });
    expect((await loadProjectSettings(folderSource(root), {})).outputStore).toEqual({ type: "local" });
  });
  test("a Mage project's variables_dir, and a remote one still named in the warning", async () => {
    const root = project({ "metadata.yaml": "project_type: standalone\nvariables_dir: /data/mage\n" });
    const settings = await loadProjectSettings(folderSource(root), {});
    expect(settings.outputStore).toEqual({ type: "local", path: `/data/mage/${root.split("/").pop()}` });
    const remote = project({ "metadata.yaml": "variables_dir: s3://bucket/mage\n", "pipelines/p/metadata.yaml": "blocks: []\n" });
    const { loadProject } = await import("@kiln/core/project");
    const loaded = await loadProject(folderSource(remote), { environment: { HOME: "/home/ana" } });
    expect(loaded.warnings).toContain("metadata.yaml: kiln does not act on variables_dir; it is ignored");
    // kiln's local store cannot write to S3: outputs stay in the project folder, and the warning says variables_dir is ignored
    expect(loaded.settings.outputStore).toEqual({ type: "local" });
  });
});

test("kiln.yaml's python is a key kiln acts on: no warning names it", async () => {
  const root = project({ "kiln.yaml": "python: /usr/bin/python3\n", "pipelines/p/metadata.yaml": "blocks: []\n" });
  const { loadProject } = await import("@kiln/core/project");
  const loaded = await loadProject(folderSource(root), {});
  expect(loaded.settings.python).toBe("/usr/bin/python3");
  expect(loaded.warnings ?? []).toEqual([]);
});
