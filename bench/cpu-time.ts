/**
 * CPU time spent while a piece of a benchmark runs: this process's own (process.cpuUsage) and
 * its children's, which Linux adds to /proc/self/stat as each one is reaped. It shows where a
 * process-per-block figure's time goes (kiln's side, the block processes, a bare runtime) and
 * what the cores allow, beside the figure itself.
 */
import { readFileSync } from "node:fs";

export interface CpuTime {
  /** This process, user + system, ms. */
  selfMs: number;
  /** Children reaped meanwhile (user + system), ms; null where /proc/self/stat is not there. */
  childrenMs: number | null;
}

/** Linux's USER_HZ: the unit of /proc/<pid>/stat's times, 100 on every architecture kiln runs on. */
const TICKS_PER_SECOND = 100;

/** The reaped children's user + system time (fields 16 and 17 of /proc/self/stat), ms; null off Linux. */
function childrenCpuMs(): number | null {
  try {
    // the command name (field 2) may hold spaces: count from the ")" that ends it
    const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Runs `fn` and returns its value with the CPU time this process and its reaped children spent meanwhile. */
export async function cpuDuring<T>(fn: () => Promise<T>): Promise<{ value: T; cpu: CpuTime }> {
  const self = process.cpuUsage();
  const children = childrenCpuMs();
  const value = await fn();
  const used = process.cpuUsage(self);
  const childrenAfter = childrenCpuMs();
  return {
    value,
    cpu: { selfMs: (used.user + used.system) / 1000, childrenMs: children === null || childrenAfter === null ? null : childrenAfter - children },
  };
}
