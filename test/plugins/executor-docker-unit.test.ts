/** The Docker executor's parts that need no engine: config checks, endpoints, container states, log frames. */
import { describe, expect, test } from "bun:test";
import {
  DEFAULT_DOCKER_HOST,
  DEFAULT_IMAGE,
  defaultImage,
  DEFAULT_PROJECT_ROOT,
  demuxOutput,
  dockerEndpoint,
  dockerExecutor,
  dockerOptions,
  failureDetail,
  outputLines,
  parseDockerConfig,
  parseMemory,
  statusOfContainer,
  CANCELLED_SUFFIX,
} from "@kiln/executor-docker";
import { BLOCK_FAILED_MARK } from "@kiln/executor-local";

const validate = (config: Record<string, unknown>) => dockerExecutor().validateConfig!(config);

/** One frame of Docker's multiplexed log stream. */
function frame(stream: 1 | 2, text: string): Uint8Array {
  const body = new TextEncoder().encode(text);
  const bytes = new Uint8Array(8 + body.length);
  bytes[0] = stream;
  new DataView(bytes.buffer).setUint32(4, body.length);
  bytes.set(body, 8);
  return bytes;
}

const concat = (...parts: Uint8Array[]) => Buffer.concat(parts);

describe("executor_config", () => {
  test("no image: kiln's own (kiln:latest, or KILN_DOCKER_IMAGE from kiln's environment)", () => {
    expect(DEFAULT_IMAGE).toBe("kiln:latest");
    expect(parseDockerConfig({})).toMatchObject({ image: "kiln:latest", imageIsDefault: true });
    expect(defaultImage({})).toBe("kiln:latest");
    expect(defaultImage({ KILN_DOCKER_IMAGE: " registry.example.com/kiln:0.1.0 " })).toBe("registry.example.com/kiln:0.1.0");
    expect(parseDockerConfig({}, defaultImage({ KILN_DOCKER_IMAGE: "localhost/kiln:test" }))).toMatchObject({ image: "localhost/kiln:test", imageIsDefault: true });
    // a block's own image wins over both
    expect(parseDockerConfig({ image: "etl:1" }, "localhost/kiln:test")).toMatchObject({ image: "etl:1", imageIsDefault: false });
    expect(dockerExecutor().validateConfig?.({})).toBeNull();
  });

  test("defaults", () => {
    const config = parseDockerConfig({ image: "etl:1" });
    expect(config).toMatchObject({
      image: "etl:1",
      projectRoot: DEFAULT_PROJECT_ROOT,
      command: ["kiln"],
      env: {},
      volumes: [],
      cpus: null,
      memoryBytes: null,
      keepContainer: false,
      init: true,
      pull: "missing",
      dockerHost: null,
      socketPath: null,
    });
  });

  test.each([
    [{ image: "" }, "executor_config.image"],
    [{ image: "x", project_root: "app" }, "executor_config.project_root"],
    [{ image: "x", command: "kiln" }, "executor_config.command"],
    [{ image: "x", command: [] }, "executor_config.command"],
    [{ image: "x", env: ["A=1"] }, "executor_config.env"],
    [{ image: "x", env: { "BAD-NAME": "1" } }, "executor_config.env.BAD-NAME"],
    [{ image: "x", env: { A: { nested: true } } }, "executor_config.env.A"],
    [{ image: "x", volumes: "/a:/b" }, "executor_config.volumes"],
    [{ image: "x", volumes: ["/a"] }, "executor_config.volumes[0]"],
    [{ image: "x", volumes: ["/a:/b", "/c:relative"] }, "executor_config.volumes[1]"],
    [{ image: "x", volumes: ["/a:/b:rx"] }, "executor_config.volumes[0]"],
    [{ image: "x", cpus: 0 }, "executor_config.cpus"],
    [{ image: "x", memory: "lots" }, "executor_config.memory"],
    [{ image: "x", keep_container: "yes" }, "executor_config.keep_container"],
    [{ image: "x", init: 1 }, "executor_config.init"],
    [{ image: "x", pull: "sometimes" }, "executor_config.pull"],
    [{ image: "x", stop_timeout: -1 }, "executor_config.stop_timeout"],
    [{ image: "x", docker_host: "/var/run/docker.sock" }, "executor_config.docker_host"],
    [{ image: "x", socket_path: "docker.sock" }, "executor_config.socket_path"],
    [{ image: "x", socket_path: "/s", docker_host: "unix:///s" }, "executor_config.docker_host"],
    [{ image: "x", imgae: "typo" }, "executor_config.imgae"],
  ])("%j is refused naming %s", (config, field) => {
    const problem = validate(config);
    expect(problem).toStartWith(`${field}:`);
  });

  test("a full config passes", () => {
    expect(
      validate({
        image: "registry.example.com/etl:1.4",
        project_root: "/srv/project",
        command: ["bun", "/app/kiln.js"],
        env: { PORT: 5432, DEBUG: true, NAME: "x" },
        network: "etl",
        volumes: ["/data:/data:ro", "/cache:/cache:rw", "/tmp/x:/x"],
        cpus: 1.5,
        memory: "2g",
        keep_container: true,
        init: false,
        pull: "always",
        stop_timeout: 30,
        docker_host: "tcp://docker.internal:2376",
      }),
    ).toBeNull();
    expect(parseDockerConfig({ image: "x", env: { PORT: 5432 } }).env).toEqual({ PORT: "5432" });
  });

  test("memory sizes", () => {
    expect(parseMemory("512m")).toBe(512 * 1024 ** 2);
    expect(parseMemory("2g")).toBe(2 * 1024 ** 3);
    expect(parseMemory("1.5G")).toBe(1.5 * 1024 ** 3);
    expect(parseMemory("256Mi")).toBe(256 * 1024 ** 2);
    expect(parseMemory("64MB")).toBe(64 * 1024 ** 2);
    expect(parseMemory(1048576)).toBe(1048576);
    expect(parseMemory("0m")).toBeNull();
    expect(parseMemory(-5)).toBeNull();
    expect(parseMemory("12x")).toBeNull();
    expect(parseMemory(true)).toBeNull();
  });
});

describe("which engine", () => {
  const none = { dockerHost: null, socketPath: null };

  test("config first, then DOCKER_HOST, then the default socket", () => {
    expect(dockerEndpoint({ dockerHost: "tcp://h:2375", socketPath: null }, { DOCKER_HOST: "unix:///other" })).toBe("tcp://h:2375");
    expect(dockerEndpoint({ dockerHost: null, socketPath: "/run/podman.sock" }, { DOCKER_HOST: "unix:///other" })).toBe("unix:///run/podman.sock");
    expect(dockerEndpoint(none, { DOCKER_HOST: "unix:///other" })).toBe("unix:///other");
    expect(dockerEndpoint(none, {})).toBe(DEFAULT_DOCKER_HOST);
  });

  test("endpoints as dockerode options", () => {
    expect(dockerOptions("unix:///var/run/docker.sock", {})).toEqual({ socketPath: "/var/run/docker.sock" });
    expect(dockerOptions("tcp://10.0.0.5:2375", {})).toEqual({ host: "10.0.0.5", port: "2375", protocol: "http" });
    expect(dockerOptions("tcp://10.0.0.5", {})).toEqual({ host: "10.0.0.5", port: 2375, protocol: "http" });
    expect(dockerOptions("tcp://10.0.0.5", { DOCKER_TLS_VERIFY: "1" })).toEqual({ host: "10.0.0.5", port: 2376, protocol: "https" });
    expect(() => dockerOptions("ssh://user@host", {})).toThrow(/docker_host: unsupported scheme "ssh:"/);
  });
});

describe("container state as block run status", () => {
  test("running, paused and created-not-started read as running", () => {
    expect(statusOfContainer("/kiln-a", { Status: "running", Running: true })).toEqual({ state: "running" });
    expect(statusOfContainer("/kiln-a", { Status: "paused" })).toEqual({ state: "running" });
    expect(statusOfContainer("/kiln-a", { Status: "created" })).toEqual({ state: "running" });
  });

  test("exit codes", () => {
    expect(statusOfContainer("/kiln-a", { Status: "exited", ExitCode: 0 })).toEqual({ state: "completed", metrics: { exit_code: 0 } });
    expect(statusOfContainer("/kiln-a", { Status: "exited", ExitCode: 3 })).toEqual({ state: "failed", error: "exit code 3", metrics: { exit_code: 3 } });
  });

  test("out of memory", () => {
    expect(statusOfContainer("/kiln-a", { Status: "exited", ExitCode: 137, OOMKilled: true })).toEqual({
      state: "failed",
      error: "killed: out of memory (OOMKilled), exit code 137",
      metrics: { exit_code: 137, oom_killed: true },
    });
  });

  test("a container kiln renamed to cancel it is cancelled whatever its exit code", () => {
    expect(statusOfContainer(`/kiln-a${CANCELLED_SUFFIX}`, { Status: "exited", ExitCode: 0 })).toEqual({ state: "cancelled" });
    expect(statusOfContainer(`/kiln-a${CANCELLED_SUFFIX}`, { Status: "exited", ExitCode: 143 })).toEqual({ state: "cancelled" });
  });

  test("a container the engine could not start", () => {
    expect(statusOfContainer("/kiln-a", { Status: "created", Error: "exec: kiln: not found" })).toEqual({
      state: "failed",
      error: "the container did not start: exec: kiln: not found",
    });
  });
});

describe("container output", () => {
  test("frames split into lines per stream, a character split across frames kept whole", () => {
    const euro = new TextEncoder().encode("€");
    const bytes = concat(frame(1, "one\ntw"), frame(2, "err line\n"), frame(1, "o\n"), frame(1, "x"), frame(2, "tail"));
    // split a multi-byte character across two stdout frames by hand
    const split1 = new Uint8Array(8 + 1);
    split1[0] = 1;
    new DataView(split1.buffer).setUint32(4, 1);
    split1[8] = euro[0] as number;
    const split2 = new Uint8Array(8 + 3);
    split2[0] = 1;
    new DataView(split2.buffer).setUint32(4, 3);
    split2.set([euro[1] as number, euro[2] as number, 0x0a], 8);
    const lines = outputLines(demuxOutput(concat(bytes, split1, split2)));
    expect(lines).toEqual(["one", "err line", "two", "x€", "tail"]);
  });

  test("output of a TTY container (no frames) is stdout as it is", () => {
    expect(demuxOutput(new TextEncoder().encode("plain text\n"))).toEqual([{ stream: "stdout", text: "plain text\n" }]);
    expect(demuxOutput(new Uint8Array())).toEqual([]);
  });

  test("the failure detail: the marked line, else the last stderr line", () => {
    const marked = demuxOutput(concat(frame(2, "Error: boom\n    at x\n"), frame(2, `${BLOCK_FAILED_MARK}boom\n`), frame(1, "after\n")));
    expect(failureDetail(marked, BLOCK_FAILED_MARK)).toBe("boom");
    const unmarked = demuxOutput(concat(frame(2, "kiln: usage: ...\n\n"), frame(1, "stdout last\n")));
    expect(failureDetail(unmarked, BLOCK_FAILED_MARK)).toBe("kiln: usage: ...");
    expect(failureDetail(demuxOutput(frame(1, "only stdout\n")), BLOCK_FAILED_MARK)).toBeNull();
  });
});
