/** JSON columns: objects are stored as TEXT and parsed back on read. */
import type { JsonObject } from "../domain.ts";

/** Parses a JSON TEXT column holding an object; null and '' give null. */
export function parseJsonObject(value: unknown): JsonObject | null {
  if (value === null || value === undefined || value === "") return null;
  const parsed: unknown = JSON.parse(String(value));
  return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as JsonObject) : null;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value ?? {});
}
