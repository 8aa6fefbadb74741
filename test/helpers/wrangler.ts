/**
 * Bundling a Worker folder the way a deployment does (`wrangler deploy --dry-run`), for the
 * tests and the bench that run the bundle under Miniflare.
 */
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";

const REPO_ROOT = resolve(import.meta.dir, "../..");

/** Bundles the Worker whose wrangler.toml is in `dir` into `dir/dist`; throws with wrangler's output if it fails. */
export function bundleWorker(dir: string): void {
  const bundled = spawnSync(join(REPO_ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", "dist"], {
    cwd: dir,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (bundled.status !== 0) throw new Error(`wrangler could not bundle the Worker:\n${bundled.stdout}${bundled.stderr}`);
}
