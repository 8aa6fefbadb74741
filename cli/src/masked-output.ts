/**
 * kiln's own stdout and stderr pass through the secret mask: an in_process block shares this
 * process, so its console.log lands here, and so do kiln's log lines about its runs.
 */
import { format } from "node:util";
import type { SecretMask } from "@kiln/core/runtime";

const masks = new Set<SecretMask>();
let installed = false;

function wrap(stream: NodeJS.WriteStream): void {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (masks.size === 0) return write(chunk, ...rest);
    let text = typeof chunk === "string" ? chunk : chunk instanceof Uint8Array ? new TextDecoder().decode(chunk) : null;
    if (text === null) return write(chunk, ...rest);
    for (const mask of masks) text = mask.mask(text);
    return write(text, ...rest);
  }) as typeof stream.write;
}

/** Masks this process's stdout and stderr with `mask` (and any mask added before). */
export function maskProcessOutput(mask: SecretMask): void {
  masks.add(mask);
  if (installed) return;
  installed = true;
  wrap(process.stdout);
  wrap(process.stderr);
  // Bun's console writes to the file descriptors itself, not through process.stdout.write
  const to = (stream: NodeJS.WriteStream) => (...args: unknown[]) => void stream.write(`${format(...args)}\n`);
  console.log = console.info = console.debug = to(process.stdout);
  console.error = console.warn = to(process.stderr);
}

/** Stops masking with `mask` (the project that added it was closed). */
export function unmaskProcessOutput(mask: SecretMask): void {
  masks.delete(mask);
}
