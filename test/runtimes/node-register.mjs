// Node: maps the `bun:test` specifier to the shim (registered after tsx, so it resolves first).
import { register } from "node:module";

register("./node-resolve.mjs", import.meta.url);
