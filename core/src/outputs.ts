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
  /**
   * Set by a store that reads a block's output row (block_outputs) before its file (the local
   * folder's default, output-store/inline.ts): the run engine then commits an in-process block
   * run's small output as a row in the write that records its completion, and deletes the row
   * when a newer output of that block went to a file, so neither shadows the other.
   */
  readonly inline?: InlineOutputs;
}

/** What the run engine needs to keep small outputs as rows (see OutputStore.inline). */
export interface InlineOutputs {
  /** The largest output kept as a row, in bytes of its UTF-8 JSON; 0: none (rows are still read, and deleted when a file replaces them). */
  readonly maxBytes: number;
}

/** A block run's output as JSON text, for the engine to store with the block run's completion. */
export interface InlineOutput {
  json: string;
  /** Its size in bytes of UTF-8. */
  bytes: number;
}

/** `json` as an output row, when it is at most `maxBytes` of UTF-8; null when it is larger (a file, then). */
export function inlineOutputOf(json: string, maxBytes: number): InlineOutput | null {
  // a UTF-16 code unit is at least a byte of UTF-8: a longer text is over without counting
  if (json.length > maxBytes) return null;
  const bytes = utf8Length(json);
  return bytes <= maxBytes ? { json, bytes } : null;
}

/** Bytes of `text` as UTF-8, without encoding it (a lone surrogate counts as U+FFFD's three, as TextEncoder writes it). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // a surrogate pair: 4 bytes for its two code units
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
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
