/** JSON columns: objects are stored as TEXT and parsed back on read. */
import type { JsonObject } from "../domain.ts";

/** Parses a JSON TEXT column holding an object; null, '' and text that is no JSON object give null (reading a row never throws on its content). */
export function parseJsonObject(value: unknown): JsonObject | null {
  if (value === null || value === undefined || value === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(value));
  } catch {
    return null;
  }
  return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as JsonObject) : null;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value ?? {});
}
