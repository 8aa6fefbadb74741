/** Serialising a block's output for the stores that keep JSON text elsewhere than a file. */
import { encodeOutput } from "../outputs.ts";

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
