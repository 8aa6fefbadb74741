#!/usr/bin/env node
// `kiln` on Node: tsx (kiln's dependency) compiles kiln's TypeScript and the project's .ts
// blocks; main.ts then installs the hook that resolves a block's "@kiln/core" to this kiln.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
