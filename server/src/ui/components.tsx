/** @jsxImportSource hono/jsx */
/**
 * Small pieces every page uses: status badges (a symbol and the word, never colour alone),
 * times (UTC in the markup, the viewer's zone filled in by the client script, UTC on hover),
 * durations, keyset pagers and the forms that post an action with the CSRF token.
 */
import { isoOrNull } from "@kiln/core/bounds";
import type { Child } from "hono/jsx";

/** A symbol per status, so statuses differ in shape as well as colour. */
const STATUS_SYMBOL: Record<string, string> = {
  initial: "○",
  queued: "◔",
  running: "▶",
  completed: "✓",
  failed: "✗",
  cancelled: "⊘",
  upstream_failed: "⤓",
  condition_failed: "◇",
  active: "●",
  inactive: "○",
};

/** A status as a badge: symbol, word, and a class for colour. */
export function Status(props: { status: string; id?: string }): Child {
  return (
    <span class={`status status-${props.status}`} data-status={props.status} {...(props.id ? { id: props.id } : {})}>
      <span aria-hidden="true">{STATUS_SYMBOL[props.status] ?? "·"}</span> {props.status.replace(/_/g, " ")}
    </span>
  );
}

/** An ISO string in UTC without milliseconds, e.g. `2026-11-22 10:15:00 UTC`. */
export function utcText(ms: number): string {
  // a stored time outside kiln's bounds (a row from before they held) reads as invalid, never a 500
  const iso = isoOrNull(ms);
  return iso === null ? "invalid date" : `${iso.replace("T", " ").replace(/\.\d{3}Z$/, "")} UTC`;
}

/** A time: shown in the viewer's zone by the client script, UTC on hover; `—` for none. */
export function Time(props: { ms: number | null | undefined }): Child {
  if (props.ms === null || props.ms === undefined) return <span class="muted">—</span>;
  const iso = isoOrNull(props.ms);
  if (iso === null) return <span class="muted" title={`stored value ${String(props.ms)} is not a valid time`}>invalid date</span>;
  return (
    <time datetime={iso} title={utcText(props.ms)}>
      {utcText(props.ms)}
    </time>
  );
}

/** A duration in the largest sensible units: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`. */
export function durationText(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** How long something took (or has taken so far, up to `now`). */
export function Duration(props: { start: number | null; end: number | null; now: number }): Child {
  if (props.start === null) return <span class="muted">—</span>;
  return <span>{durationText((props.end ?? props.now) - props.start)}</span>;
}

/** A hidden CSRF field and a single submit button: an action the server carries out on POST. */
export function ActionForm(props: { action: string; csrf: string; label: string; danger?: boolean; fields?: Record<string, string>; confirm?: string; testId?: string }): Child {
  return (
    <form method="post" action={props.action} class="inline-form" {...(props.confirm ? { "data-confirm": props.confirm } : {})}>
      <input type="hidden" name="_csrf" value={props.csrf} />
      {Object.entries(props.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" class={props.danger ? "button danger" : "button"} {...(props.testId ? { "data-testid": props.testId } : {})}>
        {props.label}
      </button>
    </form>
  );
}

/** Keyset paging: back to the newest page, and on to the next older one (the cursor of this page). */
export function Pager(props: { base: string; params: Record<string, string | undefined>; next: string | null; deep: boolean }): Child {
  const query = (after: string | null) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(props.params)) if (v !== undefined && v !== "") q.set(k, v);
    if (after) q.set("after", after);
    const s = q.toString();
    return s ? `${props.base}?${s}` : props.base;
  };
  return (
    <nav class="pager" aria-label="pages">
      {props.deep ? <a href={query(null)}>⇤ Newest</a> : <span class="muted">⇤ Newest</span>}
      {props.next ? (
        <a href={query(props.next)} rel="next" data-testid="older">
          Older →
        </a>
      ) : (
        <span class="muted">Older →</span>
      )}
    </nav>
  );
}

/** A titled panel of the overview. */
export function Panel(props: { title: string; children?: Child; id?: string }): Child {
  const id = props.id ?? `panel-${props.title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return (
    <section class="panel" aria-labelledby={id}>
      <h2 id={id}>{props.title}</h2>
      {props.children}
    </section>
  );
}

/** A table that scrolls sideways in a narrow window instead of squeezing its columns. */
export function Table(props: { caption?: string; head: string[]; children?: Child; testId?: string }): Child {
  return (
    <div class="table-wrap" tabindex={0} role="region" aria-label={props.caption ?? props.head.join(", ")}>
      <table {...(props.testId ? { "data-testid": props.testId } : {})}>
        {props.caption ? <caption>{props.caption}</caption> : null}
        <thead>
          <tr>
            {props.head.map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}

/** A message box; errors are announced to screen readers. */
export function Notice(props: { kind: "error" | "info"; children?: Child }): Child {
  return (
    <div class={`notice notice-${props.kind}`} role={props.kind === "error" ? "alert" : "status"}>
      {props.children}
    </div>
  );
}
