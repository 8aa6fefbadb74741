/**
 * The ceiling a fresh process per block run has on this machine: how many bare runtime
 * processes (`<runtime> -e 0`, started and waited for, as many at once as there are cores)
 * start and exit per second with nothing else to do. kiln's process-per-block throughput is
 * printed beside it (bench/peers.ts): a block run cannot cost less than this, and kiln's own
 * work per block run (the engine's writes, the output's file) comes on top.
 */
import { cpus } from "node:os";
import { cpuDuring } from "./cpu-time.ts";

export interface BareProcesses {
  /** Processes started and ended per second. */
  perSecond: number;
  /** CPU each one took (user + system, as reaped), ms; null where it cannot be read. */
  cpuMsEach: number | null;
}

/** Bare `process.execPath -e 0` processes started and ended per second, `total` of them, one per core at a time, and the CPU each took. */
export async function bareProcesses(total = 200, parallel = Math.max(1, cpus().length)): Promise<BareProcesses> {
  const once = async () => {
    const child = Bun.spawn([process.execPath, "-e", "0"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const code = await child.exited;
    if (code !== 0) throw new Error(`${process.execPath} -e 0 exited ${code}`);
  };
  // a few unmeasured, so the binary's pages are in the page cache as they are for kiln's spares
  for (let i = 0; i < 5; i++) await once();
  let left = total;
  const start = performance.now();
  const { cpu } = await cpuDuring(() =>
    Promise.all(
      Array.from({ length: parallel }, async () => {
        while (left > 0) {
          left--;
          await once();
        }
      }),
    ),
  );
  return { perSecond: total / ((performance.now() - start) / 1000), cpuMsEach: cpu.childrenMs === null ? null : cpu.childrenMs / total };
}
