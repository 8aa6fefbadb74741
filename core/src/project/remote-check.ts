/**
 * A block on a remote executor (a container, a cloud job) cannot see this machine's disk, so it
 * cannot reach a `file:` database or the local output folder. Caught when the project opens,
 * before a run starts and fails in a container with a less helpful message.
 */
import { resolveExecutor } from "../engine/plan.ts";
import type { Project } from "./types.ts";

/** The first block that runs remotely while the project's database or output store is local, as a message saying what to configure; null when none. */
export function remoteExecutionProblem(project: Project, databaseUrl: string, isRemote: (executorType: string) => boolean): string | null {
  const localDatabase = databaseUrl.startsWith("file:") || databaseUrl === ":memory:";
  const localOutputs = project.settings.outputStore.type === "local";
  if (!localDatabase && !localOutputs) return null;
  for (const pipeline of project.pipelines.values()) {
    for (const block of pipeline.blocks) {
      const { type } = resolveExecutor(project.settings, pipeline, block);
      if (!isRemote(type)) continue;
      const where = `pipelines/${pipeline.uuid}/metadata.yaml: block "${block.uuid}" runs on the ${type} executor, which cannot see this machine's disk`;
      if (localDatabase) {
        return `${where}, so it cannot reach the database ${databaseUrl}: set database_url in kiln.yaml, or KILN_DATABASE_URL, to a libSQL server it can reach (libsql://, https://, wss://)`;
      }
      return `${where}, so it cannot read or write block outputs in the local .variables folder: set output_store in kiln.yaml to {type: database} or {type: s3, bucket: ..., endpoint: ...}`;
    }
  }
  return null;
}
