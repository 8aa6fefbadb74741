/**
 * Live progress of `kiln run`: on a terminal, one line per block run redrawn in place; otherwise
 * one plain line per status change, which reads well in CI logs and pipes.
 */
import type { BlockRunStatus } from "@kiln/core";
import type { RunEvent } from "@kiln/core/engine";

// a mark as well as a colour, so statuses differ without colour too
const MARKS: Record<BlockRunStatus, string> = {
  initial: "·",
  queued: "…",
  running: "▶",
  completed: "✔",
  failed: "✘",
  cancelled: "■",
  upstream_failed: "↑",
  condition_failed: "⊘",
};
const COLOURS: Partial<Record<BlockRunStatus, string>> = { running: "36", completed: "32", failed: "31", upstream_failed: "33", cancelled: "33" };

function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 23);
}

export interface Progress {
  onEvent(event: RunEvent): void;
  end(): void;
}

/** Plain lines: `12:00:00.123 load_orders running`. */
export function plainProgress(write: (text: string) => void): Progress {
  return {
    onEvent(event) {
      if (event.kind === "run") {
        write(`${clock(event.at)} pipeline run ${event.pipelineRunId} ${event.status}${event.error ? `: ${event.error}` : ""}\n`);
        return;
      }
      if (event.status === "initial") return;
      const attempt = event.attempt > 1 ? ` (attempt ${event.attempt})` : "";
      write(`${clock(event.at)} ${event.blockUuid} ${event.status}${attempt}${event.error ? `: ${event.error}` : ""}\n`);
    },
    end() {},
  };
}

/** A table of block runs redrawn in place on a terminal. */
export function ttyProgress(write: (text: string) => void): Progress {
  const rows = new Map<string, { status: BlockRunStatus; attempt: number; started: number; ended: number | null; error: string | null }>();
  let drawn = 0;
  let scheduled = false;
  const draw = () => {
    scheduled = false;
    const lines: string[] = [];
    for (const [uuid, row] of rows) {
      const colour = COLOURS[row.status];
      const mark = colour ? `\x1b[${colour}m${MARKS[row.status]}\x1b[0m` : MARKS[row.status];
      const took = row.ended !== null ? ` ${((row.ended - row.started) / 1000).toFixed(2)} s` : "";
      const attempt = row.attempt > 1 ? ` attempt ${row.attempt}` : "";
      const error = row.error ? `  ${row.error.split("\n")[0]?.slice(0, 100)}` : "";
      lines.push(`${mark} ${uuid.padEnd(28)} ${row.status}${attempt}${took}${error}`);
    }
    write(`${drawn > 0 ? `\x1b[${drawn}F` : ""}${lines.map((l) => `\x1b[2K${l}`).join("\n")}\n`);
    drawn = lines.length;
  };
  return {
    onEvent(event) {
      if (event.kind === "run") return;
      const row = rows.get(event.blockUuid);
      const ended = ["completed", "failed", "cancelled", "upstream_failed", "condition_failed"].includes(event.status);
      rows.set(event.blockUuid, {
        status: event.status,
        attempt: event.attempt,
        started: event.status === "running" || !row ? event.at : row.started,
        ended: ended ? event.at : null,
        error: event.error,
      });
      if (!scheduled) {
        scheduled = true;
        setTimeout(draw, 50);
      }
    },
    end() {
      if (scheduled) draw();
    },
  };
}
