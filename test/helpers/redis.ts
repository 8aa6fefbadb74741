/** A private redis-server for a test file: a free port, its own process, stopped by pid. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { freePort } from "./ports.ts";

export interface RedisServer {
  url: string;
  port: number;
  stop(): void;
}

/** Whether redis-server is installed; under CI a missing one is a failure, not a skip. */
export function redisAvailable(): boolean {
  const found = spawnSync("redis-server", ["--version"]).status === 0;
  if (!found && process.env.CI === "true") throw new Error("redis-server is not installed (CI=true: .ci/run should have installed it)");
  return found;
}

/** Starts redis-server on a free port and waits until it answers. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
    { stdio: "ignore" },
  );
  const stop = () => {
    if (child.exitCode === null) child.kill("SIGKILL");
  };
  process.once("exit", stop);
  for (let i = 0; i < 200; i++) {
    if (spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString().trim() === "PONG") {
      return { url: `redis://127.0.0.1:${port}`, port, stop };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  stop();
  throw new Error(`redis-server did not start on port ${port}`);
}
