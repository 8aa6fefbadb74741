/** The default output store: JSON files under the project's `.variables/` folder. */
import { readFileSync } from "node:fs";
import { makePrivateDir, writePrivateFile } from "./private-files.ts";
import { dirname, join } from "node:path";
import { encodeOutput, OutputMissingError, outputPath, type OutputStore } from "@kiln/core";

/**
 * Block outputs as files: at `<project>/.variables/pipelines/<pipeline>/<partition>/<block>/output_0`,
 * or, given a variables folder (kiln.yaml `output_store.path`, a Mage project's variables_dir), at
 * `<folder>/pipelines/<pipeline>/.variables/<partition>/<block>/output_0` as Mage lays it out.
 */
export function fileOutputStore(projectRoot: string, variablesFolder?: string): OutputStore {
  const made = new Set<string>();
  const relative = (pipelineUuid: string, partition: string, blockUuid: string) =>
    variablesFolder === undefined
      ? outputPath(pipelineUuid, partition, blockUuid)
      : `pipelines/${pipelineUuid}/.variables/${partition}/${blockUuid}/output_0`;
  const base = variablesFolder ?? projectRoot;
  return {
    async write(pipelineUuid, partition, blockUuid, value) {
      const path = join(base, relative(pipelineUuid, partition, blockUuid));
      const dir = dirname(path);
      if (!made.has(dir)) {
        makePrivateDir(dir);
        made.add(dir);
      }
      writePrivateFile(path, encodeOutput(value));
    },
    async read(pipelineUuid, partition, blockUuid) {
      const rel = relative(pipelineUuid, partition, blockUuid);
      let text: string;
      try {
        text = readFileSync(join(base, rel), "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new OutputMissingError(rel);
        throw error;
      }
      return JSON.parse(text) as unknown;
    },
  };
}
