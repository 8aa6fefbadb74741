// A module.register resolve hook (Node): "@kiln/core" is the kiln that runs the project, from any
// folder; a project's .ts/.js modules are ES modules though no package.json says "type": "module"
// (blocks are ES modules; without this, Node and tsx take them for CommonJS outside kiln's folder).
// Plain JavaScript: hooks run on their own thread.
let core;

export function initialize(data) {
  core = data.core;
}

export async function resolve(specifier, context, next) {
  // through the rest of the chain (tsx on Node), which loads TypeScript: a process that has not
  // loaded @kiln/core itself (a thin block process) gets it from this import
  if (specifier === "@kiln/core") return next(core, context);
  const resolved = await next(specifier, context);
  if (resolved.format !== "module" && resolved.url.startsWith("file:") && !resolved.url.includes("/node_modules/") && /\.(ts|js)$/.test(resolved.url)) {
    return { ...resolved, format: "module" };
  }
  return resolved;
}
