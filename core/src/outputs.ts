/**
 * Where block outputs live. The default store is the project's `.variables/` folder (in the
 * node package); the database and object storage are other backends of the same interface.
 */

/** Raised when a block asks for an output that was never written. */
export class OutputMissingError extends Error {
  constructor(readonly path: string) {
    super(`no output at ${path}: the upstream block has not completed in that partition`);
    this.name = "OutputMissingError";
  }
}

export interface OutputStore {
  write(pipelineUuid: string, partition: string, blockUuid: string, value: unknown): Promise<void>;
  /** The stored value; throws OutputMissingError when there is none. */
  read(pipelineUuid: string, partition: string, blockUuid: string): Promise<unknown>;
}

/** Project-relative path of a block run's output, as in Mage. */
export function outputPath(pipelineUuid: string, partition: string, blockUuid: string): string {
  return `.variables/pipelines/${pipelineUuid}/${partition}/${blockUuid}/output_0`;
}

/** Serialises an output; `undefined` (a block that returns nothing) is stored as null. */
export function encodeOutput(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value);
}

/**
 * The output as JSON text; a function or symbol (which JSON.stringify turns into nothing) is an
 * error naming the block, rather than an empty object stored and a parse error downstream.
 */
export function encodeBlockOutput(pipelineUuid: string, blockUuid: string, value: unknown): string {
  const json = encodeOutput(value) as string | undefined;
  if (json === undefined) {
    throw new TypeError(`block "${blockUuid}" of pipeline "${pipelineUuid}" returned a ${typeof value}, which JSON cannot hold: return JSON data (objects, arrays, strings, numbers, booleans, null)`);
  }
  return json;
}
