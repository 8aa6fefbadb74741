// A module.register resolve hook: `bun:test` is the shim; everything else resolves as before.
const shim = new URL("./bun-test-shim.ts", import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === "bun:test") return { url: shim, shortCircuit: true };
  return next(specifier, context);
}
