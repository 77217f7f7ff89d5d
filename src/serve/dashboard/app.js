// The migration dashboard: reads the read-only API of `artifact-migrate serve` (same origin)
// every 2 s and redraws when the indexed commit moves. No framework, no build step: the
// server embeds this file. Every value from the API reaches the page as text (textContent),
// never as markup.
"use strict";

const POLL_MS = 2000;
const CHART_BARS = 40;
const TIMELINE_LIMIT = 200;
const LOG_LIMIT = 100;
const SVG = "http://www.w3.org/2000/svg";
const LATEST_COLOUR = "#2f9e62";
const UNREADABLE_COLOUR = "#9aa5b4";
const PALETTE = ["#d9822b", "#3b7dd8", "#8e5cc2", "#d1495b", "#c9a227", "#4aa3a2", "#7b8794", "#a0522d"];

const state = {
  commit: null, // the commit the page shows
  open: null, // {job, run} of the manifest shown
  job: null, // {id, next} of the job listed
  lastOk: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

const fmt = (n) => Number(n).toLocaleString("en-US");
const short = (c) => (c || "").slice(0, 10);
const pct = (n, total) => (total > 0 ? `${((100 * n) / total).toFixed(n === total || n === 0 ? 0 : 1)}%` : "–");

// MAJOR.MINOR.PATCH, compared as numbers; anything else sorts last, as text.
function cmpVersion(a, b) {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  const okA = pa.length === 3 && pa.every(Number.isInteger);
  const okB = pb.length === 3 && pb.every(Number.isInteger);
  if (okA && okB) {
    for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
    return 0;
  }
  if (okA !== okB) return okA ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

// One colour per version, stable for a given set: the latest green, older ones from the palette.
function colours(versions, latest) {
  const map = new Map();
  let i = 0;
  for (const v of [...versions].sort(cmpVersion)) {
    map.set(v, v === latest ? LATEST_COLOUR : PALETTE[i++ % PALETTE.length]);
  }
  map.set("unreadable", UNREADABLE_COLOUR);
  return map;
}

class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

async function request(url) {
  let r;
  try {
    r = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
  } catch (e) {
    throw new ApiError(0, "network", `cannot reach the server (${e.message})`);
  }
  if (!r.ok) {
    let kind = "error";
    let message = `${r.status} ${r.statusText}`;
    try {
      const body = await r.json();
      kind = body.error.kind;
      message = body.error.message;
    } catch (_) {
      // not the API's error shape: keep the status line
    }
    throw new ApiError(r.status, kind, message);
  }
  return r;
}

const getJSON = async (url) => (await request(url)).json();

function showError(message) {
  const box = $("error");
  if (message) {
    box.textContent = message;
    box.hidden = false;
  } else {
    box.hidden = true;
    box.textContent = "";
  }
}

function setLive(ok, text) {
  const live = $("live");
  live.classList.toggle("ok", ok);
  live.classList.toggle("stale", !ok);
  $("live-text").textContent = text;
}

// Everything the page shows, read as of one commit: asked again when the answers disagree
// (the branch moved between two requests).
async function snapshot() {
  for (let attempt = 0; attempt < 4; attempt++) {
    const [health, versions, timeline, log] = await Promise.all([
      getJSON("/healthz"),
      getJSON("/schemas/versions"),
      getJSON(`/schemas/timeline?limit=${TIMELINE_LIMIT}`),
      getJSON(`/migrations?limit=${LOG_LIMIT}`),
    ]);
    const commits = new Set([health.commit, versions.commit, timeline.commit, log.commit]);
    if (commits.size === 1) return { health, versions, timeline, log };
  }
  throw new ApiError(0, "moving", "the branch keeps moving; trying again");
}

function figure(id, n) {
  const node = $(id);
  node.textContent = fmt(n);
  node.dataset.value = String(n);
  node.parentElement.classList.toggle("zero", n === 0);
}

function renderNow(v, health, colour) {
  const total = v.total;
  const atLatest = v.versions[v.latest] || 0;
  figure("total", total);
  figure("pending", v.pending);
  figure("at-latest", atLatest);
  figure("invalid", v.invalid);
  $("latest").textContent = v.latest;
  $("latest").dataset.value = v.latest;
  const where = $("where");
  where.replaceChildren(
    "Branch ",
    el("code", {}, (health.refname || "").replace(/^refs\/heads\//, "")),
    " at ",
    el("code", { id: "commit", "data-value": v.commit }, short(v.commit)),
    ` · ${fmt(total)} manifests · latest schema ${v.latest}`,
  );

  const entries = Object.entries(v.versions).sort((a, b) => cmpVersion(a[0], b[0]));
  if (v.invalid > 0) entries.push(["unreadable", v.invalid]);
  const bar = $("now-bar");
  const parts = entries.filter(([, n]) => n > 0);
  bar.replaceChildren(
    ...parts.map(([ver, n]) => {
      const s = el("span", { title: `${ver}: ${fmt(n)} (${pct(n, total)})` });
      s.style.flexGrow = String(n);
      s.style.background = colour.get(ver);
      return s;
    }),
  );
  bar.setAttribute(
    "aria-label",
    total === 0
      ? "no manifests"
      : `version distribution: ${parts.map(([ver, n]) => `${ver} ${fmt(n)}`).join(", ")}`,
  );
  legend($("now-legend"), parts.map(([ver]) => ver), colour, v.latest);

  const body = $("now-table").tBodies[0];
  if (entries.length === 0) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "3" }, "No manifests on this branch yet.")));
    return;
  }
  body.replaceChildren(
    ...entries.map(([ver, n]) =>
      el(
        "tr",
        { "data-version": ver },
        el("th", { scope: "row" }, ver === v.latest ? `${ver} (latest)` : ver),
        el("td", { class: "num", "data-value": String(n) }, fmt(n)),
        el("td", { class: "num" }, pct(n, total)),
      ),
    ),
  );
}

function legend(list, versions, colour, latest) {
  list.replaceChildren(
    ...versions.map((ver) => {
      const sw = el("span", { class: "swatch", "aria-hidden": "true" });
      sw.style.background = colour.get(ver);
      const label = ver === "unreadable" ? "unreadable" : ver === latest ? `${ver} (latest)` : ver;
      return el("li", {}, sw, label);
    }),
  );
}

// The y axis: 0 to a round number at or above `max`, with 4 or 5 steps.
function ticks(max) {
  if (max <= 0) return [0, 1];
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const step1 = Math.max(1, step);
  const out = [];
  for (let t = 0; t < max + step1; t += step1) out.push(t);
  return out;
}

function renderTimeline(t, colour) {
  const all = t.batches.slice().reverse(); // oldest first
  const bars = all.slice(-CHART_BARS);
  const chart = $("chart");
  const hint = $("time-hint");
  const versions = new Set();
  let unreadable = false;
  for (const b of bars) {
    for (const ver of Object.keys(b.versions)) versions.add(ver);
    if (b.unreadable > 0) unreadable = true;
  }
  const order = [...versions].sort(cmpVersion);
  if (unreadable) order.push("unreadable");
  if (bars.length === 0) {
    hint.textContent = "No batch yet: each batch that artifact-migrate apply commits adds a bar here.";
    chart.replaceChildren();
  } else {
    const more = t.next || all.length > bars.length ? ` (the ${bars.length} most recent)` : "";
    hint.textContent =
      `Manifests per schema version at each batch's commit, oldest on the left${more}. ` +
      `Rollbacks are marked in red.`;
    chart.replaceChildren(barChart(bars, order, colour, t.latest));
  }
  legend($("time-legend"), order, colour, t.latest);
  $("time-table").closest("details").hidden = all.length === 0;

  const table = $("time-table");
  table.tHead.replaceChildren(
    el(
      "tr",
      {},
      el("th", { scope: "col" }, "Commit"),
      el("th", { scope: "col" }, "Kind"),
      ...order.map((ver) => el("th", { scope: "col", class: "num" }, ver)),
      el("th", { scope: "col", class: "num" }, "Pending"),
    ),
  );
  table.tBodies[0].replaceChildren(
    ...all.map((b) =>
      el(
        "tr",
        { "data-commit": b.commit },
        el("th", { scope: "row" }, el("code", {}, short(b.commit))),
        el("td", {}, b.kind),
        ...order.map((ver) =>
          el("td", { class: "num" }, fmt(ver === "unreadable" ? b.unreadable : b.versions[ver] || 0)),
        ),
        el("td", { class: "num" }, fmt(b.pending)),
      ),
    ),
  );
}

function barChart(bars, order, colour, latest) {
  const slot = Math.max(46, Math.min(110, Math.floor(620 / Math.max(1, bars.length))));
  const left = 52;
  const top = 12;
  const plotH = 190;
  const bottom = 44;
  const width = Math.max(560, left + bars.length * slot + 16);
  const height = top + plotH + bottom;
  const max = Math.max(1, ...bars.map((b) => b.total));
  const ts = ticks(max);
  const yMax = ts[ts.length - 1];
  const y = (n) => top + plotH - (plotH * n) / yMax;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": "chart-title",
    preserveAspectRatio: "xMinYMin meet",
  });
  root.append(svg("title", { id: "chart-title" }, `Version distribution after each of ${bars.length} batches`));
  for (const tk of ts) {
    root.append(svg("line", { class: tk === 0 ? "axis" : "grid", x1: left, x2: width - 8, y1: y(tk), y2: y(tk) }));
    root.append(svg("text", { x: left - 6, y: y(tk) + 4, "text-anchor": "end" }, fmt(tk)));
  }
  const bw = Math.min(44, slot - 14);
  bars.forEach((b, i) => {
    const x = left + i * slot + (slot - bw) / 2;
    const parts = order
      .map((ver) => [ver, ver === "unreadable" ? b.unreadable : b.versions[ver] || 0])
      .filter(([, n]) => n > 0);
    const label =
      `${b.kind} ${short(b.commit)}${b.target ? ` to ${b.target}` : ""}: ` +
      parts.map(([ver, n]) => `${ver} ${fmt(n)}`).join(", ") +
      `; ${fmt(b.pending)} pending`;
    const g = svg("g", { class: "bar", tabindex: 0, role: "img", "aria-label": label, "data-commit": b.commit });
    g.append(svg("title", {}, label));
    let acc = 0;
    for (const [ver, n] of parts) {
      g.append(
        svg("rect", {
          x,
          width: bw,
          y: y(acc + n),
          height: Math.max(0.5, y(acc) - y(acc + n)),
          fill: colour.get(ver),
        }),
      );
      acc += n;
    }
    root.append(g);
    const cx = x + bw / 2;
    root.append(svg("text", { class: "commit", x: cx, y: top + plotH + 14, "text-anchor": "middle" }, short(b.commit).slice(0, 7)));
    const kind = b.kind === "migration" ? (b.target ? `→ ${b.target}` : "") : b.kind;
    root.append(svg("text", { class: `kind-${b.kind}`, x: cx, y: top + plotH + 28, "text-anchor": "middle" }, kind));
  });
  return root;
}

function renderLog(log) {
  const body = $("log").tBodies[0];
  const hint = $("log-hint");
  if (log.batches.length === 0) {
    hint.textContent = "No batch, rollback or repair on this branch yet.";
    body.replaceChildren();
    return;
  }
  hint.textContent = log.next ? `The ${log.batches.length} most recent, newest first.` : "Newest first.";
  body.replaceChildren(
    ...log.batches.map((b) => {
      const what = b.kind === "rollback" && b.rollback_of ? `reverts ${short(b.rollback_of)}` : b.target ? `to ${b.target}` : "";
      const steps = (b.steps || []).map((s) => `${s.from} → ${s.to} ×${fmt(s.count)}`).join(", ");
      return el(
        "tr",
        { class: b.rolled_back_by ? "rolled-back" : null, "data-commit": b.commit },
        el("td", { class: "when" }, (b.date || "").replace("T", " ").replace(/([+-]\d\d:\d\d|Z)$/, "")),
        el("td", {}, el("span", { class: `kind kind-${b.kind}` }, b.kind)),
        el("td", {}, el("code", { title: b.commit }, short(b.commit))),
        el("td", { class: "what", title: b.subject }, what, steps ? el("div", { class: "hint" }, steps) : ""),
        el("td", { class: "num" }, b.manifests == null ? "–" : fmt(b.manifests)),
        el("td", {}, b.rolled_back_by ? el("code", { title: b.rolled_back_by }, short(b.rolled_back_by)) : ""),
      );
    }),
  );
}

async function poll() {
  try {
    const s = await snapshot();
    const moved = s.versions.commit !== state.commit;
    if (moved) {
      const seen = new Set(Object.keys(s.versions.versions));
      for (const b of s.timeline.batches) for (const v of Object.keys(b.versions)) seen.add(v);
      const colour = colours(seen, s.versions.latest);
      renderNow(s.versions, s.health, colour);
      renderTimeline(s.timeline, colour);
      renderLog(s.log);
      state.commit = s.versions.commit;
      document.body.dataset.commit = state.commit;
      if (state.open) await openRun(state.open.job, state.open.run, false);
      if (state.job) await findJob(state.job.id, false);
    }
    showError(null);
    state.lastOk = new Date();
    setLive(true, `following the branch · checked ${state.lastOk.toLocaleTimeString("en-GB")}`);
  } catch (e) {
    const since = state.lastOk ? ` · last update ${state.lastOk.toLocaleTimeString("en-GB")}` : "";
    setLive(false, `not up to date${since}`);
    if (e.kind !== "moving") showError(`Cannot read the migration state: ${e.message}`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function runsRows(job, runs) {
  return runs.map((r) =>
    el(
      "tr",
      { "data-run": r.run_id },
      el("td", {}, el("code", {}, r.run_id)),
      el("td", {}, r.schema_version),
      el("td", {}, r.status || "–"),
      el("td", {}, el("code", {}, r.path)),
      el("td", {}, openButton(job, r.run_id)),
    ),
  );
}

function openButton(job, run) {
  const b = el("button", { type: "button", "aria-label": `open run ${run}` }, "Open");
  b.addEventListener("click", () => openRun(job, run, true));
  return b;
}

async function find(q) {
  const msg = $("find-msg");
  msg.textContent = "Looking…";
  try {
    const found = await getJSON(`/jobs/${encodeURIComponent(q)}`);
    if (Array.isArray(found.runs)) {
      await findJob(q, true, found);
    } else {
      state.job = null;
      $("job-runs").hidden = true;
      $("more-runs").hidden = true;
      msg.textContent = `Run ${found.run_id} of job ${found.job_id}.`;
      await openRun(found.job_id, found.run_id, true);
    }
  } catch (e) {
    state.job = null;
    $("job-runs").hidden = true;
    $("more-runs").hidden = true;
    msg.textContent = e.status === 404 ? `Nothing found: ${e.message}.` : `Cannot search: ${e.message}`;
  }
}

async function findJob(id, fresh, first) {
  const page = first || (await getJSON(`/jobs/${encodeURIComponent(id)}`));
  state.job = { id, next: page.next };
  const table = $("job-runs");
  $("job-caption").textContent = `Runs of job ${page.job_id}`;
  table.tBodies[0].replaceChildren(...runsRows(page.job_id, page.runs));
  table.hidden = false;
  $("more-runs").hidden = !page.next;
  if (fresh) $("find-msg").textContent = `Job ${page.job_id}: ${page.runs.length}${page.next ? "+" : ""} runs. Open one to see its manifest.`;
}

async function moreRuns() {
  if (!state.job || !state.job.next) return;
  const page = await getJSON(`/jobs/${encodeURIComponent(state.job.id)}?cursor=${encodeURIComponent(state.job.next)}`);
  state.job.next = page.next;
  $("job-runs").tBodies[0].append(...runsRows(page.job_id, page.runs));
  $("more-runs").hidden = !page.next;
}

async function manifestText(url) {
  const r = await request(url);
  return {
    text: await r.text(),
    stored: r.headers.get("x-schema-version-stored"),
    served: r.headers.get("x-schema-version-served"),
    migrated: r.headers.get("x-migrated-on-read") === "true",
  };
}

async function openRun(job, run, focus) {
  state.open = { job, run };
  const base = `/jobs/${encodeURIComponent(job)}/runs/${encodeURIComponent(run)}`;
  const box = $("manifest");
  box.hidden = false;
  $("manifest-h").textContent = `Run ${run} of job ${job}`;
  const [stored, latest] = await Promise.allSettled([manifestText(base), manifestText(`${base}?as=latest`)]);
  if (stored.status === "fulfilled") {
    $("stored").textContent = stored.value.text;
    $("stored-ver").textContent = stored.value.stored;
  } else {
    $("stored").textContent = stored.reason.message;
    $("stored-ver").textContent = "";
  }
  $("stored-ver").dataset.value = $("stored-ver").textContent;
  if (latest.status === "fulfilled") {
    $("migrated").textContent = latest.value.text;
    $("latest-ver").textContent = latest.value.served;
    $("latest-note").textContent = latest.value.migrated
      ? `migrated on read from ${latest.value.stored}; nothing written`
      : "already at the latest version";
  } else {
    $("migrated").textContent = latest.reason.message;
    $("latest-ver").textContent = "";
    $("latest-note").textContent = "cannot be migrated";
  }
  $("latest-ver").dataset.value = $("latest-ver").textContent;
  box.dataset.run = run;
  if (focus) $("manifest-h").scrollIntoView({ block: "nearest" });
}

document.addEventListener("DOMContentLoaded", () => {
  $("find").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("q").value.trim();
    if (q) find(q);
  });
  $("more-runs").addEventListener("click", () => moreRuns().catch((e) => ($("find-msg").textContent = e.message)));
  poll();
});
