/** Serialising a block's output for the stores that keep JSON text elsewhere than a file. */
export { encodeBlockOutput } from "../outputs.ts";
