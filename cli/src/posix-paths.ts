/**
 * Absolute POSIX paths and their file: URLs without node:path and node:url: a thin block process
 * (commands/block-process.ts) needs both once, and loading node:path costs Bun about 1 ms of CPU
 * and node:url about 3 at every boot of a process that otherwise loads neither. Block processes
 * run in process groups, so POSIX paths are all they meet.
 */

/** `path` made absolute against `base` (an absolute folder), its `.` and `..` segments resolved, as node:path's resolve does. */
export function absolutePath(base: string, path: string): string {
  const segments: string[] = [];
  for (const segment of (path.startsWith("/") ? path : `${base}/${path}`).split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join("/")}`;
}

/** The file: URL of an absolute path: decoded, it is the path again (as node:url's fileURLToPath reads it). */
export function fileUrlOf(path: string): string {
  const url = new URL("file:///");
  // what URL's pathname setter would take as an escape, a separator, a drive letter or strip, encoded first
  url.pathname = path.replace(/[%\\|\n\r\t]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
  return url.href;
}
