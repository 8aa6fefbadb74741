/**
 * A real container engine for the Docker executor's tests: podman's Docker-compatible API,
 * served by this test process on its own socket (see ../shared/ENVIRONMENT.md, "Containers").
 * Storage lives in a folder under the system temp dir that outlives the run, so the test image
 * (bun, its shared libraries and busybox, built locally: no registry is reachable) is built
 * once per machine and found again by its tag.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Docker from "dockerode";
import { REPO_ROOT } from "./fixtures.ts";

/** Where the repository is mounted in the test image; its `kiln` command runs the CLI from there. */
export const KILN_IN_IMAGE = "/kiln";

export interface PodmanEngine {
  socketPath: string;
  docker: Docker;
  /** Stops the API service this process started (by its pid). */
  stop(): void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Why podman cannot serve here, or null when it can be tried. */
export function podmanMissing(): string | null {
  for (const tool of ["podman", "runc"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed (.ci/setup.d/podman.sh installs it)`;
  }
  if (!existsSync("/bin/busybox")) return "busybox-static is not installed (.ci/setup.d/podman.sh installs it)";
  return null;
}

/** Podman's storage for the tests (kept across runs, so images are built once per machine) and its containers.conf. */
export function podmanStorage(): { state: string; conf: string; globalArgs: string[] } {
  const state = join(tmpdir(), `kiln-docker-test-${process.getuid?.() ?? 0}`);
  mkdirSync(state, { recursive: true });
  const conf = join(state, "containers.conf");
  writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n');
  return { state, conf, globalArgs: ["--root", join(state, "root"), "--runroot", join(state, "runroot")] };
}

/**
 * Starts `podman system service` on a socket of its own, in its own session (setsid) so it can be
 * stopped by pid, with runc and the ulimits the machine allows (crun fails here).
 */
export async function startPodman(): Promise<PodmanEngine> {
  const { conf, globalArgs } = podmanStorage();
  const run = mkdtempSync(join(tmpdir(), "kiln-podman-"));
  const socketPath = join(run, "podman.sock");
  const child = spawn(
    "setsid",
    ["podman", ...globalArgs, "system", "service", "--time=0", `unix://${socketPath}`],
    { env: { ...process.env, CONTAINERS_CONF: conf }, stdio: ["ignore", "ignore", "pipe"], detached: false },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let exited = false;
  child.on("exit", () => (exited = true));
  const stop = () => {
    if (!exited && child.pid) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    rmSync(run, { recursive: true, force: true });
  };
  const docker = new Docker({ socketPath });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) {
      stop();
      throw new Error(`podman system service exited: ${stderr.trim().slice(0, 1000)}`);
    }
    if (existsSync(socketPath)) {
      try {
        await docker.ping();
        break;
      } catch {
        // the socket exists before the API answers
      }
    }
    if (Date.now() > deadline) {
      stop();
      throw new Error(`podman system service did not answer on ${socketPath} within 20 s: ${stderr.trim().slice(0, 1000)}`);
    }
    await sleep(100);
  }
  return { socketPath, docker, stop };
}

/** The shared libraries an ELF file needs, as absolute paths (from ldd). */
function sharedLibraries(file: string): string[] {
  const out = spawnSync("ldd", [file], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`ldd ${file} failed: ${out.stderr}`);
  return [...out.stdout.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1] as string);
}

/**
 * A test image that can run `kiln run-block`: bun with the shared libraries it and libSQL's
 * native module need, busybox for /bin/sh, and a `kiln` command running the CLI from the
 * repository mounted at KILN_IN_IMAGE. Built only when its tag is not in the engine yet.
 */
export async function kilnTestImage(docker: Docker): Promise<string> {
  const bun = process.execPath;
  const libsqlNative = join(REPO_ROOT, "node_modules/@libsql/linux-x64-gnu/index.node");
  const libraries = [...new Set([...sharedLibraries(bun), ...(existsSync(libsqlNative) ? sharedLibraries(libsqlNative) : [])])].sort();
  const wrapper = `#!/bin/sh\nexec bun ${KILN_IN_IMAGE}/cli/src/main.ts "$@"\n`;
  const digest = createHash("sha256").update(JSON.stringify([Bun.version, Bun.revision, libraries, wrapper])).digest("hex").slice(0, 12);
  const tag = `localhost/kiln-docker-test:${digest}`;
  try {
    await docker.getImage(tag).inspect();
    return tag;
  } catch {
    // not built yet on this machine
  }
  const context = mkdtempSync(join(tmpdir(), "kiln-image-"));
  try {
    const rootfs = join(context, "rootfs");
    const put = (from: string, to: string) => {
      mkdirSync(dirname(join(rootfs, to)), { recursive: true });
      copyFileSync(from, join(rootfs, to));
    };
    put("/bin/busybox", "bin/busybox");
    const applets = spawnSync("/bin/busybox", ["--list"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    for (const applet of applets) if (applet !== "busybox") symlinkSync("busybox", join(rootfs, "bin", applet));
    put(bun, "usr/local/bin/bun");
    chmodSync(join(rootfs, "usr/local/bin/bun"), 0o755);
    for (const library of libraries) put(library, library);
    writeFileSync(join(rootfs, "usr/local/bin/kiln"), wrapper, { mode: 0o755 });
    mkdirSync(join(rootfs, "tmp"), { mode: 0o1777 });
    writeFileSync(join(context, "Dockerfile"), "FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/bin HOME=/tmp\n");
    const archive = join(context, "context.tar");
    const tar = spawnSync("tar", ["-cf", archive, "-C", context, "Dockerfile", "rootfs"], { encoding: "utf8" });
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
    const stream = await docker.buildImage(archive, { t: tag });
    const events = await new Promise<Array<{ error?: string; stream?: string }>>((resolve, reject) =>
      docker.modem.followProgress(stream, (error: Error | null, result: Array<{ error?: string }>) => (error ? reject(error) : resolve(result))),
    );
    const failed = events.find((e) => e.error);
    if (failed) throw new Error(`building the test image failed: ${failed.error}`);
    return tag;
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}
