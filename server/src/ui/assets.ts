/**
 * The UI's stylesheet and client script, as strings served by the app itself: no build step and
 * no file system at run time, so they are served the same way from Bun, Deno, Node and a Worker.
 * The script is plain ES2020 the browser runs as is.
 */

/** Bumped when either asset changes, so browsers that cached the old one fetch the new one. */
export const ASSET_VERSION = "2";

export const APP_CSS = `
:root { color-scheme: light dark; --bg: #fbfbfa; --fg: #1d1f21; --muted: #666b70; --line: #d8dadc; --panel: #ffffff;
  --accent: #0b5cad; --focus: #f5a300; --ok: #1a7f37; --bad: #c2261b; --warn: #9a6700; --live: #0b5cad; --idle: #6e7781; }
@media (prefers-color-scheme: dark) { :root { --bg: #16181b; --fg: #e6e6e6; --muted: #a0a6ad; --line: #3a3f45; --panel: #1f2226;
  --accent: #6cb6ff; --ok: #56d364; --bad: #ff7b72; --warn: #e3b341; --live: #6cb6ff; --idle: #9ca3ab; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip-link { position: absolute; left: -999px; top: 0; background: var(--panel); padding: .5rem 1rem; z-index: 10; }
.skip-link:focus { left: .5rem; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; padding: .6rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); }
.brand { font-weight: 700; font-size: 1.2rem; text-decoration: none; color: var(--fg); }
header nav ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; margin: 0; padding: 0; }
header nav a { text-decoration: none; padding: .2rem .1rem; }
header nav a[aria-current="page"] { font-weight: 700; border-bottom: 3px solid var(--accent); }
.who { margin-left: auto; display: flex; gap: .75rem; align-items: center; color: var(--muted); }
main { padding: 1rem; max-width: 1200px; margin: 0 auto; }
main:focus { outline: none; }
#run-live, #backfill-live { margin-top: .8rem; }
h1 { font-size: 1.5rem; margin: .2rem 0 1rem; display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 .5rem; }
.muted { color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; min-width: 0; }
.panel h2 { margin-top: 0; }
main > .panel, main > .grid { margin-bottom: 1rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; color: var(--muted); padding-bottom: .3rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: top; }
td.wrap { white-space: normal; overflow-wrap: anywhere; }
.status { display: inline-flex; gap: .3rem; align-items: center; padding: .05rem .5rem; border-radius: 999px; border: 1px solid currentColor; font-size: .85rem; white-space: nowrap; }
.status-completed, .status-active { color: var(--ok); }
.status-failed, .status-upstream_failed { color: var(--bad); }
.status-cancelled, .status-condition_failed { color: var(--warn); }
.status-running, .status-queued { color: var(--live); font-weight: 600; }
.status-initial, .status-inactive { color: var(--idle); }
.button, button { font: inherit; padding: .35rem .8rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
.button.danger { background: var(--bad); border-color: var(--bad); }
.button.secondary { background: transparent; color: var(--accent); }
.link-button { background: none; border: none; color: var(--accent); text-decoration: underline; padding: 0; }
.inline-form { display: inline; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0 1rem; }
form.stack { display: grid; gap: .6rem; max-width: 34rem; }
form.stack label { display: grid; gap: .2rem; }
input, select, textarea { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); max-width: 100%; }
.hint { color: var(--muted); font-size: .85rem; }
.notice { padding: .6rem .9rem; border-radius: 4px; margin: .5rem 0 1rem; border: 1px solid var(--line); }
.notice-error { border-color: var(--bad); }
.notice-error::before { content: "⚠ "; }
.banner { margin: 0; border-radius: 0; }
.pager { display: flex; gap: 1.5rem; margin: .8rem 0; }
pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
pre.code { background: var(--panel); border: 1px solid var(--line); padding: .6rem; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.log { max-height: 22rem; overflow: auto; background: #111; color: #ddd; padding: .5rem; margin: .3rem 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.log .lvl-error { color: #ff8f86; } .log .lvl-warn, .log .lvl-warning { color: #f0c862; }
details.block-log { border: 1px solid var(--line); border-radius: 4px; padding: .3rem .6rem; margin: .4rem 0; background: var(--panel); }
details.block-log summary { cursor: pointer; }
svg { max-width: 100%; height: auto; }
svg text { fill: var(--fg); font: 12px system-ui, sans-serif; }
.dag-node rect { fill: var(--panel); stroke: var(--accent); stroke-width: 1.5; }
.dag-edge { stroke: var(--muted); fill: none; stroke-width: 1.5; }
.dag-arrow { fill: var(--muted); }
svg text.muted-text { fill: var(--muted); font-size: 11px; }
.gantt-row rect.track { fill: none; stroke: var(--line); }
.bar-completed { fill: var(--ok); } .bar-failed, .bar-upstream_failed { fill: url(#hatch); stroke: var(--bad); }
.bar-running, .bar-queued { fill: var(--live); } .bar-cancelled, .bar-condition_failed { fill: url(#dots); stroke: var(--warn); }
.bar-initial { fill: var(--idle); }
#hatch path { stroke: var(--bad); } #dots circle { fill: var(--warn); }
.chart .seg-completed { fill: var(--ok); } .chart .seg-failed { fill: url(#hatch); stroke: var(--bad); }
.chart .seg-running, .chart .seg-initial { fill: var(--live); } .chart .seg-cancelled { fill: url(#dots); stroke: var(--warn); }
.legend { display: flex; flex-wrap: wrap; gap: .4rem 1rem; margin: .4rem 0; padding: 0; list-style: none; }
progress { width: 100%; height: 1.2rem; }
.login { max-width: 22rem; margin: 3rem auto; }
@media (max-width: 640px) {
  main { padding: .6rem; }
  .who { margin-left: 0; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dt { margin-top: .4rem; }
}
`;

export const APP_JS = `
"use strict";
(function () {
  // times arrive as UTC; show them in the viewer's zone, keep UTC in the title (hover)
  var fmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
  function localize(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i], d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d.getTime())) { t.textContent = fmt.format(d); t.setAttribute("data-local", "1"); }
    }
  }
  // replaces a region's content, keeping keyboard focus on the element (by id) that had it
  function replace(target, html) {
    var active = document.activeElement, focusId = active && target.contains(active) ? active.id : null;
    target.innerHTML = html;
    localize(target);
    if (focusId) { var again = document.getElementById(focusId); if (again) again.focus(); }
  }
  function confirmForms(root) {
    root.addEventListener("submit", function (e) {
      var form = e.target;
      if (form && form.getAttribute && form.getAttribute("data-confirm") && !window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
    });
  }
  // a region the server re-renders and pushes over Server-Sent Events ("fragment" events)
  function fragments() {
    var regions = document.querySelectorAll("[data-fragment-stream]");
    Array.prototype.forEach.call(regions, function (region) {
      var source = new EventSource(region.getAttribute("data-fragment-stream"));
      source.addEventListener("fragment", function (e) {
        var data = JSON.parse(e.data);
        replace(region, data.html);
        if (data.status) document.body.setAttribute("data-live-status", data.status);
        if (data.done) { source.close(); region.setAttribute("data-stream-done", "1"); }
      });
      source.addEventListener("end", function () { source.close(); region.setAttribute("data-stream-done", "1"); });
    });
  }
  // block logs: one panel per block, fed by the run's log stream
  function logs() {
    var box = document.querySelector("[data-log-stream]");
    if (!box) return;
    var panels = {};
    function panel(block) {
      if (panels[block]) return panels[block];
      var details = document.createElement("details");
      details.className = "block-log";
      details.open = true;
      details.setAttribute("data-block", block);
      var summary = document.createElement("summary");
      summary.textContent = block;
      var pre = document.createElement("pre");
      pre.className = "log";
      pre.tabIndex = 0;
      pre.setAttribute("aria-label", "log of block " + block);
      pre.setAttribute("aria-live", "polite");
      details.appendChild(summary);
      details.appendChild(pre);
      box.appendChild(details);
      var empty = box.querySelector("[data-empty]");
      if (empty) empty.remove();
      return (panels[block] = pre);
    }
    var source = new EventSource(box.getAttribute("data-log-stream"));
    source.addEventListener("log", function (e) {
      var line = JSON.parse(e.data), pre = panel(line.block_uuid);
      var row = document.createElement("span");
      row.className = "lvl-" + (line.level || "info");
      var at = line.at ? fmt.format(new Date(line.at)) + " " : "";
      row.textContent = at + (line.level ? line.level.toUpperCase() + " " : "") + line.message + "\\n";
      if (line.at) row.title = line.at;
      var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(row);
      while (pre.childNodes.length > 5000) pre.removeChild(pre.firstChild);
      if (stick) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("end", function () { source.close(); box.setAttribute("data-stream-done", "1"); });
    source.addEventListener("error", function () { if (source.readyState === 2) box.setAttribute("data-stream-done", "1"); });
  }
  // a list's status badges, kept current by the server ("status" events)
  function liveLists() {
    var list = document.querySelector("[data-status-stream]");
    if (!list) return;
    var source = new EventSource(list.getAttribute("data-status-stream"));
    source.addEventListener("status", function (e) {
      var data = JSON.parse(e.data), cell = document.getElementById("run-status-" + data.id);
      if (cell) replace(cell, data.html);
    });
    source.addEventListener("end", function () { source.close(); });
  }
  function start() {
    localize(document);
    confirmForms(document);
    fragments();
    logs();
    liveLists();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
`;
