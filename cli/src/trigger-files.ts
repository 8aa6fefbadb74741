/**
 * The server's writer of triggers.yaml files (see core's code-triggers.ts): an API or UI edit of
 * a trigger defined in a file is written there atomically, the project is loaded again from disk
 * and handed to this process's scheduler before the database changes, so the next sync reads the
 * new file. Edits are applied one at a time, so two requests cannot lose each other's change.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { triggersFile, type TriggerFileWriter } from "@kiln/core/api";
import { TriggerYamlError, type Project } from "@kiln/core/project";
import { writeAtomically } from "./commands/trigger.ts";
import { loadUserProject } from "./project.ts";
import { messageOf } from "@kiln/core";

/** A writer for the project at `projectPath`; `onReload` gets the project as loaded after each write. */
export function triggerFileWriter(projectPath: string, root: string, onReload: (project: Project) => void): TriggerFileWriter {
  let queue: Promise<unknown> = Promise.resolve();
  return {
    edit(pipelineUuid, edit) {
      const run = queue.then(async () => {
        const rel = triggersFile(pipelineUuid);
        const file = join(root, rel);
        const before = existsSync(file) ? readFileSync(file, "utf8") : null;
        writeAtomically(file, edit(before));
        let next: Project;
        try {
          next = await loadUserProject(projectPath);
        } catch (error) {
          // the file must never be left in a state the scheduler would refuse to load
          if (before === null) rmSync(file, { force: true });
          else writeAtomically(file, before);
          throw new TriggerYamlError("", `the project would no longer load, so ${rel} was left as it was: ${messageOf(error)}`);
        }
        onReload(next);
      });
      queue = run.catch(() => undefined);
      return run;
    },
  };
}
