/** Variable precedence, lowest first: project < pipeline < trigger < run < runtime. Later wins. */
import type { JsonObject } from "./domain.ts";

/** Merges variable layers (shallow: a later layer replaces a key, it does not merge into it). */
export function mergeVariables(...layers: Array<JsonObject | null | undefined>): JsonObject {
  const merged: JsonObject = {};
  for (const layer of layers) if (layer) Object.assign(merged, layer);
  return merged;
}
