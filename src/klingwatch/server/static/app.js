// klingwatch dashboard: plain JS, reads /api and listens to /api/events/stream.
// Instants come from the API as *_ms (epoch milliseconds); durations as *_seconds.
"use strict";

const STATUSES = ["queued", "unknown", "submitted", "processing", "succeed", "failed", "rejected"];
const LABELS = {
  queued: "queued", unknown: "unknown", submitted: "submitted", processing: "processing",
  succeed: "succeeded", failed: "failed", rejected: "rejected",
};
const PAGE = 50;
const FAILURES = "failed,rejected";  // the tasks page's filter for "Failed and rejected"
const ATTENTION = 10;  // failures listed on the overview; the rest are a link away

// ---- small helpers -------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "style") el.setAttribute("style", v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);
const fmtInt = (n) => Number(n || 0).toLocaleString();

function badge(status) {
  return h("span", { class: `badge ${status}`, "data-status": status }, LABELS[status] || status);
}

function ago(ms) {
  if (!ms) return "";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function hms(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function durShort(seconds) {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

function clock(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const today = new Date();
  const t = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return d.toDateString() === today.toDateString() ? t : `${d.toLocaleDateString()} ${t}`;
}

function dur(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  const hrs = Math.floor(s / 3600);
  if (hrs < 48) return `${hrs}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.round(hrs / 24)}d`;
}

// Seconds from instant a to instant b (both epoch ms), or null when either is unknown.
function between(a, b) { return a && b ? (b - a) / 1000 : null; }

function short(text, n) {
  if (!text) return "";
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function taskLabel(t) {
  return t.prompt ? short(t.prompt, 80) : t.external_task_id;
}

async function api(path, opts) {
  const res = await fetch(path, { credentials: "same-origin", ...(opts || {}) });
  return answer(res);
}

// Every write is a same-origin JSON POST: the server refuses any other kind (cross-site forms).
async function post(path, body) {
  const res = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });
  return answer(res);
}

async function answer(res) {
  if (res.status === 401) {
    location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    throw new Error("not signed in");
  }
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return res.json();
}

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

function stamp() { $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`; }

// ---- live updates --------------------------------------------------------------------------
function listen(onChange) {
  const live = $("live");
  const label = live.querySelector("span");
  let source = null;
  function connect() {
    source = new EventSource("/api/events/stream");
    source.onopen = () => { live.classList.add("on"); live.classList.remove("off"); label.textContent = "live"; };
    source.addEventListener("change", (msg) => onChange(JSON.parse(msg.data)));
    source.onerror = () => {
      live.classList.remove("on"); live.classList.add("off"); label.textContent = "reconnecting";
    };
  }
  connect();
  window.addEventListener("beforeunload", () => source && source.close());
}

// ---- alerts (every view) -------------------------------------------------------------------
function renderAlerts(stats) {
  const box = $("alerts");
  box.replaceChildren();
  const items = [];
  if (stats.paused) {
    items.push(h("div", { class: "alert bad", id: "alert-paused" },
      h("strong", {}, stats.pack_exhausted ? "Resource pack exhausted" : "Submissions paused"),
      h("span", {}, stats.pause_reason || "sending is paused"),
      h("button", { type: "button", onclick: resume }, "Resume")));
  }
  for (const a of stats.alerts) {
    if (a.kind === "submissions_paused" && stats.paused) continue;
    items.push(h("div", { class: "alert", "data-kind": a.kind },
      h("strong", {}, a.kind.replace(/_/g, " ")), h("span", {}, a.message),
      h("span", { class: "muted" }, a.count > 1 ? `${a.count}× · ${ago(a.last_at_ms)}` : ago(a.at_ms))));
  }
  if (stats.expiring_downloads > 0 && !stats.alerts.some((a) => a.kind === "results_expiring")) {
    items.push(h("div", { class: "alert", id: "alert-expiring" }, h("strong", {}, "Downloads expiring"),
      h("span", {}, `${stats.expiring_downloads} succeeded task(s) not downloaded will be deleted by Kling soon`)));
  }
  box.append(...items);
  box.hidden = items.length === 0;
}

async function refreshAlerts() {
  try { renderAlerts(await api("/api/stats")); } catch (e) { console.error(e); }
}

async function resume() {
  try { await post("/api/resume"); } catch (e) { alert(e.message); }
  if ($("view-overview").hidden) refreshAlerts(); else refreshOverview();
}

// ---- overview ------------------------------------------------------------------------------
function renderCards(stats) {
  const c = stats.counts;
  const inflight = c.submitted + c.processing + c.unknown;
  const slots = Object.values(stats.slots_in_use).reduce((a, b) => a + b, 0);
  const cards = [
    ["total", "Total", stats.total, "var(--accent)", `${Object.keys(stats.by_product).length} product(s)`],
    ["queued", "Queued", c.queued, "var(--queued)", "waiting for a slot"],
    ["inflight", "In flight", inflight, "var(--processing)", `${c.processing} processing · ${slots} slot(s)`],
    ["succeed", "Succeeded", c.succeed, "var(--succeed)", ""],
    ["failed", "Failed", c.failed + c.rejected, "var(--failed)", c.rejected ? `${c.rejected} rejected` : ""],
    ["stuck", "Stuck", stats.stuck, "var(--unknown)", c.unknown ? `${c.unknown} unknown` : ""],
  ];
  $("cards").replaceChildren(...cards.map(([key, label, n, color, sub]) =>
    h("div", { class: "card", id: `count-${key}`, style: `--c:${color}` },
      h("div", { class: "n" }, fmtInt(n)), h("div", { class: "label" }, label),
      h("div", { class: "sub" }, sub))));
}

// A batch's progress bar (a segment per status) and its ETA, as the overview and its page show them.
const BAR_ORDER = ["succeed", "failed", "rejected", "processing", "submitted", "unknown", "queued"];
function batchProgress(b) {
  const segs = BAR_ORDER.filter((s) => b.counts[s] > 0).map((s) =>
    h("span", { class: s, style: `width:${(100 * b.counts[s]) / b.total}%`, title: `${b.counts[s]} ${LABELS[s]}` }));
  const pct = Math.round(100 * b.progress);
  let eta = "—";
  if (b.done === b.total && b.total > 0) eta = "done";
  else if (b.eta_seconds !== null) eta = dur(b.eta_seconds);
  const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct) }, segs);
  return { bar, pct, eta };
}

function renderBatches(batches) {
  const box = $("batches");
  if (!batches.length) { box.replaceChildren(h("p", { class: "empty" }, "No batches yet.")); return; }
  box.replaceChildren(...batches.map((b) => {
    const { bar, pct, eta } = batchProgress(b);
    return h("div", { class: "batch", "data-batch": b.name },
      h("div", { class: "batch-head" },
        h("a", { class: "batch-name", href: `/batches/${encodeURIComponent(b.name)}` }, b.name),
        h("span", { class: "muted progress-text" }, `${fmtInt(b.done)} / ${fmtInt(b.total)} done · ${pct}%`)),
      bar,
      h("div", { class: "batch-meta" },
        h("span", {}, h("b", {}, fmtInt(b.succeeded)), " succeeded"),
        h("span", {}, h("b", {}, fmtInt(b.failed)), " failed"),
        h("span", {}, h("b", {}, fmtInt(b.counts.processing + b.counts.submitted + b.counts.unknown)), " in flight"),
        h("span", {}, h("b", {}, fmtInt(b.counts.queued)), " queued"),
        h("span", {}, "rate ", h("b", {}, b.rate_per_min === null ? "—" : `${b.rate_per_min.toFixed(1)}/min`)),
        h("span", { class: "eta" }, "ETA ", h("b", {}, eta)),
        h("span", { class: "units" }, "units ", h("b", {}, `≈${b.units_estimated} · ${b.units_spent} spent`)),
        b.max_units !== null ? h("span", { class: "cap" }, "cap ", h("b", {}, b.max_units), b.held ? ` · ${b.held} held` : "") : null));
  }));
  const active = batches.filter((b) => b.done < b.total).length;
  $("batch-summary").textContent = `${batches.length} batch(es), ${active} running`;
}

function eventItem(e, fresh) {
  // Named as the user named it (its external_task_id), the local id only as a fallback.
  const who = e.local_id === null
    ? h("span", { class: "muted" }, "unknown task")
    : h("a", { href: `/task/${e.local_id}`, class: "task-name", title: `task #${e.local_id}` },
      e.external_task_id || `#${e.local_id}`);
  const move = e.from_status && e.from_status !== e.to_status
    ? [badge(e.from_status), h("span", { class: "arrow" }, "→"), badge(e.to_status)]
    : [badge(e.to_status)];
  const note = e.from_status === e.to_status ? ` ${e.detail || ""}` : "";
  return h("li", { class: fresh ? "fresh" : "", "data-event": String(e.id) },
    h("span", { class: "when", title: e.at_iso }, hms(e.at_ms)),
    h("span", { class: "what" }, who, " ", e.product ? h("span", { class: "muted" }, `${e.product} `) : "", move, note),
    h("span", { class: "src" }, e.source));
}

const seenEvents = new Set();
function addEvents(items, fresh) {
  const list = $("events");
  const empty = list.querySelector(".empty");
  if (items.length && empty) empty.remove();
  for (const e of items) {
    if (seenEvents.has(e.id)) continue;
    seenEvents.add(e.id);
    list.prepend(eventItem(e, fresh));
  }
  while (list.children.length > 80) list.lastElementChild.remove();
}

function attentionItem(t, reason) {
  return h("li", { "data-task": String(t.local_id) },
    h("a", { href: `/task/${t.local_id}` }, `#${t.local_id}`),
    h("span", {}, badge(t.status), " ", h("span", { class: "muted" }, t.product), " ", short(taskLabel(t), 60)),
    h("span", { class: "reason" }, reason || "no reason given"));
}

// The pill counts every failure; the list shows the newest few and links to all of them.
function renderAttention(stuck, failed, failures) {
  $("stuck-count").textContent = stuck.length;
  $("failed-count").textContent = fmtInt(failures);
  $("stuck").replaceChildren(...(stuck.length ? stuck.map((t) => attentionItem(t, t.stuck_reason))
    : [h("li", { class: "empty" }, "No stuck tasks.")]));
  $("failed").replaceChildren(...(failed.length ? failed.map((t) => attentionItem(t, t.status_msg))
    : [h("li", { class: "empty" }, "No failures.")]));
  const more = $("failed-all");
  more.hidden = failures <= failed.length;
  more.href = `/tasks?status=${encodeURIComponent(FAILURES)}`;
  more.textContent = `All ${fmtInt(failures)} failed and rejected tasks →`;
}

function renderThroughput(tp) {
  const n = tp.succeeded.length;
  const max = Math.max(1, ...tp.succeeded.map((v, i) => v + tp.failed[i]));
  // Drawn at the box's own width so text is never stretched.
  const W = Math.max(240, $("throughput").clientWidth || 600), H = 150, pad = 18, bw = (W - pad) / n;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 16}`);
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  add("line", { x1: pad, x2: W, y1: H, y2: H });
  add("text", { class: "axis", x: 0, y: 10 }, String(max));
  add("text", { class: "axis", x: 0, y: H }, "0");
  for (let i = 0; i < n; i++) {
    const ok = tp.succeeded[i], bad = tp.failed[i];
    const hOk = (H - 4) * ok / max, hBad = (H - 4) * bad / max;
    const x = pad + i * bw + 1;
    const when = new Date(tp.start_at_ms + i * tp.bucket_seconds * 1000).toLocaleString();
    if (ok) add("rect", { class: "ok", x, y: H - hOk, width: bw - 2, height: hOk }).append(
      Object.assign(document.createElementNS(ns, "title"), { textContent: `${ok} succeeded from ${when}` }));
    if (bad) add("rect", { class: "bad", x, y: H - hOk - hBad, width: bw - 2, height: hBad }).append(
      Object.assign(document.createElementNS(ns, "title"), { textContent: `${bad} failed from ${when}` }));
  }
  const span = tp.bucket_seconds * n;
  add("text", { class: "axis", x: pad, y: H + 14 }, `-${dur(span)}`);
  add("text", { class: "axis", x: W - 24, y: H + 14 }, "now");
  $("throughput").replaceChildren(svg);
  const total = tp.succeeded.reduce((a, b) => a + b, 0) + tp.failed.reduce((a, b) => a + b, 0);
  $("throughput-window").textContent = `${total} finished · last ${dur(span)} · per ${dur(tp.bucket_seconds)}`;
  const ok = tp.succeeded.reduce((a, b) => a + b, 0);
  const perHour = total / (span / 3600);
  const facts = [
    ["Succeeded", fmtInt(ok)],
    ["Failed", fmtInt(total - ok)],
    ["Success rate", total ? `${Math.round((100 * ok) / total)}%` : "—"],
    ["Per hour", perHour >= 10 ? fmtInt(Math.round(perHour)) : perHour.toFixed(1)],
  ];
  $("throughput-facts").replaceChildren(...facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

function renderDurations(groups) {
  const box = $("durations");
  if (!groups.length) { box.replaceChildren(h("p", { class: "empty" }, "No finished tasks yet.")); return; }
  box.replaceChildren(...groups.slice(0, 6).map((g) => {
    const max = Math.max(1, ...g.counts);
    const names = [g.product, g.model, g.mode].filter(Boolean).join(" · ");
    const bounds = g.bounds_seconds;
    const labels = bounds.map((b) => `≤${durShort(b)}`).concat([`>${durShort(bounds[bounds.length - 1])}`]);
    return h("div", { class: "dur" },
      h("div", { class: "dur-head" }, h("b", {}, names),
        h("span", { class: "muted" }, `n=${g.n} · queue p50 ${dur(g.queue_p50_seconds)} · run p50 ${dur(g.run_p50_seconds)} · p95 ${dur(g.run_p95_seconds)}`)),
      h("div", { class: "hist" }, g.counts.map((c, i) =>
        h("span", { style: `height:${(100 * c) / max}%`, title: `${c} task(s) ${labels[i]}` }))),
      h("div", { class: "hist-axis" }, labels.map((l, i) => h("span", {}, i % 3 === 0 ? l : ""))));
  }));
}

function renderEngine(stats) {
  const facts = [
    ["Slots in use", Object.entries(stats.slots_in_use).map(([f, n]) => `${f} ${n}`).join(" · ") || "0"],
    ["Submissions", stats.paused ? "paused" : stats.engine && stats.engine.running ? "sending" : "not running here"],
    ["Requests to Kling", stats.engine ? `${fmtInt(stats.engine.requests)} (${fmtInt(stats.engine.looks)} looks, ${fmtInt(stats.engine.errors)} errors)` : "no engine in this process"],
    ["Callbacks", Object.entries(stats.callbacks).map(([k, n]) => `${k} ${n}`).join(" · ") || "none yet"],
    ["Expiring downloads", fmtInt(stats.expiring_downloads)],
    ["Products", Object.keys(stats.by_product).join(", ") || "—"],
  ];
  $("engine").replaceChildren(...facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

let refreshing = false;
async function refreshOverview() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [stats, batches, stuck, failed] = await Promise.all([
      api("/api/stats"), api("/api/batches"), api("/api/stuck"), api(`/api/failed?limit=${ATTENTION}`),
    ]);
    renderAlerts(stats);
    renderCards(stats);
    renderBatches(batches);
    renderAttention(stuck, failed, stats.counts.failed + stats.counts.rejected);
    renderThroughput(stats.throughput);
    renderDurations(stats.durations);
    renderEngine(stats);
    refreshSpend();  // batch.js
    stamp();
  } catch (e) {
    console.error(e);
  } finally {
    refreshing = false;
  }
}

async function showOverview() {
  $("view-overview").hidden = false;
  const soon = debounce(refreshOverview, 250);
  await refreshOverview();
  const recent = await api("/api/events?limit=40");
  addEvents(recent.items, false);
  listen((e) => { addEvents([e], true); soon(); });
  setInterval(refreshOverview, 15000);  // ETAs and "ago" move even when nothing changes
}

// ---- tasks list ----------------------------------------------------------------------------
function tookOf(t) {
  const start = t.submitted_at_ms || t.queued_at_ms;
  if (t.finished_at_ms && start) return dur(between(start, t.finished_at_ms));
  if (t.status === "processing" || t.status === "submitted") return `${dur(between(start, Date.now()))}…`;
  return "—";
}

async function showTasks() {
  $("view-tasks").hidden = false;
  refreshAlerts();
  const form = $("filters");
  const params = new URLSearchParams(location.search);
  const statusSel = form.elements.status;
  for (const s of STATUSES) statusSel.append(h("option", { value: s }, LABELS[s]));
  statusSel.append(h("option", { value: FAILURES }, "failed or rejected"));
  try {
    const batches = await api("/api/batches");
    for (const b of batches) form.elements.batch.append(h("option", { value: b.name }, b.name));
  } catch (e) { console.error(e); }
  for (const key of ["status", "batch", "product", "model", "q"]) {
    if (params.get(key)) form.elements[key].value = params.get(key);
  }
  for (const key of ["since", "until"]) {
    const ms = params.get(`${key}_ms`);
    if (ms) {
      const d = new Date(Number(ms));
      form.elements[key].value = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    }
  }
  let offset = Number(params.get("offset") || 0);

  function query() {
    const q = new URLSearchParams();
    for (const key of ["status", "batch", "product", "model", "q"]) {
      const v = form.elements[key].value.trim();
      if (v) q.set(key, v);
    }
    for (const key of ["since", "until"]) {
      const v = form.elements[key].value;
      if (v) q.set(`${key}_ms`, String(new Date(v).getTime()));
    }
    return q;
  }

  // The page's query as the API takes it: "failed,rejected" is status=failed&status=rejected.
  function apiQuery(q) {
    const out = new URLSearchParams(q);
    out.delete("status");
    for (const s of (q.get("status") || "").split(",").filter(Boolean)) out.append("status", s);
    out.set("limit", String(PAGE));
    out.set("offset", String(offset));
    return out;
  }

  async function load() {
    const q = query();
    const page = await api(`/api/tasks?${apiQuery(q)}`);
    if (offset) q.set("offset", String(offset));
    history.replaceState(null, "", `/tasks${q.toString() ? `?${q}` : ""}`);
    $("task-rows").replaceChildren(...(page.items.length ? page.items.map((t) =>
      h("tr", { "data-task": String(t.local_id) },
        h("td", {}, h("a", { href: `/task/${t.local_id}` }, `#${t.local_id}`)),
        h("td", {}, badge(t.status), t.stuck ? h("span", { class: "muted", title: t.stuck_reason || "" }, " stuck") : ""),
        h("td", { class: "prompt", title: t.prompt || "" }, h("a", { href: `/task/${t.local_id}` }, taskLabel(t)),
          t.status_msg ? h("div", { class: "row-reason", title: t.status_msg }, t.status_msg) : null),
        h("td", { class: "hide-sm" }, [t.product, t.model].filter(Boolean).join(" · ")),
        h("td", { class: "hide-sm" }, t.batch),
        h("td", { class: "hide-sm", title: t.queued_at_iso }, ago(t.queued_at_ms)),
        h("td", {}, tookOf(t))))
      : [h("tr", {}, h("td", { colspan: "7", class: "empty" }, "No task matches."))]));
    const last = Math.min(offset + PAGE, page.total);
    $("tasks-summary").textContent = page.total ? `${offset + 1}–${last} of ${fmtInt(page.total)}` : "0 tasks";
    $("prev").disabled = offset === 0;
    $("next").disabled = offset + PAGE >= page.total;
    stamp();
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; load(); });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  $("next").addEventListener("click", () => { offset += PAGE; load(); });
  await load();
  listen(debounce(load, 400));
}

// ---- one task ------------------------------------------------------------------------------
function fact(label, value) {
  if (value === null || value === undefined || value === "") return null;
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

async function showTask(ref) {
  $("view-task").hidden = false;
  refreshAlerts();
  let lastShown = null;
  async function load() {
    let t;
    try {
      t = await api(`/api/tasks/${encodeURIComponent(ref)}`);
    } catch (e) {
      $("task").replaceChildren(h("section", { class: "panel" }, h("h2", {}, "Task not found"), h("p", {}, e.message)));
      return;
    }
    const key = `${t.status}|${t.timeline.length}|${t.downloads.length}|${t.stuck}`;
    if (key === lastShown) return;
    lastShown = key;
    document.title = `#${t.local_id} ${LABELS[t.status]} · klingwatch`;
    // m.url is klingwatch's downloaded copy when there is one (Kling's link expires).
    const media = t.media.map((m) => h("figure", { "data-local": String(m.local) },
      m.kind === "video"
        ? h("video", { src: m.url, controls: true, autoplay: true, muted: true, loop: true, playsinline: true, preload: "metadata" })
        : m.kind === "image" ? h("img", { src: m.url, alt: `result of task ${t.local_id}`, loading: "lazy" })
          : h("audio", { src: m.url, controls: true }),
      h("figcaption", { class: "muted" }, m.local ? "downloaded copy · " : "from Kling · ",
        h("a", { href: m.kling_url, target: "_blank", rel: "noopener noreferrer" }, "Kling's link"))));
    const start = t.submitted_at_ms || t.sent_at_ms;
    const facts = [
      fact("Product", t.product), fact("Model", t.model), fact("Mode", t.mode), fact("Duration", t.duration && `${t.duration}s`),
      fact("Batch", h("a", { href: `/tasks?batch=${encodeURIComponent(t.batch)}` }, t.batch)),
      fact("Kling task id", t.task_id && h("span", { class: "mono" }, t.task_id)),
      fact("External id", h("span", { class: "mono" }, t.external_task_id)),
      fact("Queued", clock(t.queued_at_ms)), fact("Submitted", clock(t.submitted_at_ms)),
      fact("Processing since", clock(t.processing_at_ms)), fact("Finished", clock(t.finished_at_ms)),
      fact("Queue time", start && t.processing_at_ms ? dur(between(start, t.processing_at_ms)) : null),
      fact("Run time", t.processing_at_ms && t.finished_at_ms ? dur(between(t.processing_at_ms, t.finished_at_ms)) : null),
      fact("Detected after", t.detected_at_ms && t.finished_at_ms ? dur(between(t.finished_at_ms, t.detected_at_ms)) : null),
      fact("Units", t.units), fact("Polls", String(t.polls)), fact("Send attempts", String(t.send_attempts)),
      fact("Results deleted", t.expires_at_ms && `${clock(t.expires_at_ms)} (${dur(between(Date.now(), t.expires_at_ms))} left)`),
      fact("Retry of", t.retry_of && h("a", { href: `/task/${t.retry_of}` }, `#${t.retry_of}`)),
      fact("From", t.source_line),
    ];
    const timeline = t.timeline.map((e) => h("li", { style: `--dot:var(--${e.to_status})` },
      h("div", {}, e.from_status && e.from_status !== e.to_status ? [badge(e.from_status), h("span", { class: "arrow" }, "→")] : "",
        badge(e.to_status), " ", h("span", { class: "muted" }, `${e.source} · ${clock(e.at_ms)}`)),
      e.detail ? h("div", { class: "detail" }, e.detail) : null));
    const final = ["succeed", "failed", "rejected"].includes(t.status);
    // Retrying spends units: offered for failures only (the API also takes a succeeded task).
    const retryable = t.status === "failed" || t.status === "rejected";
    const retryBtn = retryable ? h("button", { type: "button", class: "ghost", onclick: async () => {
      if (!confirm(`Queue task #${t.local_id} again as a new task? Retrying spends units.`)) return;
      try {
        const out = await post(`/api/tasks/${t.local_id}/retry`);
        location.href = `/task/${out.task.local_id}`;
      } catch (e) { alert(e.message); }
    } }, "Retry") : null;
    $("task").replaceChildren(
      h("section", { class: "panel" },
        h("div", { class: "task-head" }, h("h1", {}, `Task #${t.local_id}`), badge(t.status),
          t.stuck ? h("span", { class: "badge unknown" }, "stuck") : null, h("span", { class: "spacer" }), retryBtn),
        t.prompt ? h("p", { class: "prompt-text" }, t.prompt) : null,
        t.status_msg ? h("div", { class: "reason-box" }, t.status_msg) : null,
        t.stuck && t.stuck_reason ? h("div", { class: "reason-box" }, `Stuck: ${t.stuck_reason}`) : null),
      h("div", { class: "task-grid" },
        h("div", { style: "display:grid;gap:1.2rem;align-content:start" },
          h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Result")),
            media.length ? h("div", { class: "media" }, media)
              : h("p", { class: "empty" }, final ? "No result files." : "Not finished yet.")),
          h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Details")),
            h("dl", { class: "facts" }, facts.filter(Boolean)))),
        h("div", { style: "display:grid;gap:1.2rem;align-content:start" },
          h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Timeline")),
            h("ol", { class: "timeline", id: "timeline" }, timeline)),
          t.downloads.length ? h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Downloads")),
            h("ul", { class: "attention" }, t.downloads.map((d) => h("li", {},
              h("span", {}, `${d.index}`), h("span", {}, `${d.state} `,
                d.file_url ? h("a", { href: d.file_url }, d.path) : (d.path || "")),
              d.error ? h("span", { class: "reason" }, d.error) : null)))) : null,
          h("section", { class: "panel" }, h("details", {}, h("summary", {}, "Request"),
            h("pre", { class: "json" }, JSON.stringify(t.request, null, 2)))))));
    stamp();
  }
  await load();
  listen((e) => { if (e.local_id === null || String(e.local_id) === String(lastLocalId())) load(); });
  function lastLocalId() { const m = document.title.match(/^#(\d+)/); return m ? m[1] : ref; }
}

// ---- start ---------------------------------------------------------------------------------
function start() {
  const path = location.pathname;
  const nav = path.startsWith("/task") ? "tasks" : "overview";
  const batch = path.match(/^\/batches\/(.+)$/);
  if (batch) return showBatch(decodeURIComponent(batch[1]));  // batch.js
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
  const m = path.match(/^\/task\/(.+)$/);
  if (m) return showTask(decodeURIComponent(m[1]));
  if (path === "/tasks") return showTasks();
  return showOverview();
}
document.addEventListener("DOMContentLoaded", start);
