/** The default output store: JSON files under the project's `.variables/` folder. */
import { readFileSync } from "node:fs";
import { makePrivateDir, writePrivateFile } from "./private-files.ts";
import { dirname, join } from "node:path";
import { encodeOutput, OutputMissingError, outputPath, type OutputStore } from "@kiln/core";

/** Block outputs as files at `.variables/pipelines/<pipeline>/<partition>/<block>/output_0`. */
export function fileOutputStore(projectRoot: string): OutputStore {
  const made = new Set<string>();
  return {
    async write(pipelineUuid, partition, blockUuid, value) {
      const path = join(projectRoot, outputPath(pipelineUuid, partition, blockUuid));
      const dir = dirname(path);
      if (!made.has(dir)) {
        makePrivateDir(dir);
        made.add(dir);
      }
      writePrivateFile(path, encodeOutput(value));
    },
    async read(pipelineUuid, partition, blockUuid) {
      const rel = outputPath(pipelineUuid, partition, blockUuid);
      let text: string;
      try {
        text = readFileSync(join(projectRoot, rel), "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new OutputMissingError(rel);
        throw error;
      }
      return JSON.parse(text) as unknown;
    },
  };
}
