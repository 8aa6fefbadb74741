/** What a reused block process (executor_config.reuse) clears between two block runs. */
import { readdirSync, readFileSync } from "node:fs";
import { sep } from "node:path";

/** Forgets the project's own modules (not its node_modules), so the next import runs them afresh. */
export function forgetProjectModules(root: string): void {
  const prefix = root.endsWith(sep) ? root : `${root}${sep}`;
  for (const path of Object.keys(require.cache)) {
    if (path.startsWith(prefix) && !path.includes(`${sep}node_modules${sep}`)) delete require.cache[path];
  }
}

/**
 * Kills the processes left in this process's group but those in `keep` (a reused worker leads
 * its own group, which kiln kills whole on cancel or timeout; between block runs only the
 * leftovers go). Linux: the group is read from /proc; elsewhere leftovers live until the
 * worker's group is killed.
 */
export function killLeftovers(keep: Iterable<number> = []): void {
  const kept = new Set([process.pid, ...keep]);
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || kept.has(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // after the parenthesised command: state, ppid, pgrp
      const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (pgrp === process.pid) process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
}
