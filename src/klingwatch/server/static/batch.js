// klingwatch dashboard: one batch's page (/batches/{name}) and the overview's spend panel.
// Uses app.js's helpers (h, $, api, post, badge, dur, ...), loaded before this file.
"use strict";

// Each sortable column: how to read the value to sort by from a task.
const BATCH_COLUMNS = [
  ["id", "#", (t) => t.local_id],
  ["status", "Status", (t) => STATUSES.indexOf(t.status)],
  ["prompt", "Prompt", (t) => (t.prompt || t.external_task_id).toLowerCase()],
  ["kind", "Model", (t) => [t.model, t.mode].filter(Boolean).join(" ")],
  ["estimate", "≈Units", (t) => Number(t.units_estimated || 0)],
  ["units", "Units", (t) => (t.units === null ? -1 : Number(t.units))],
  ["queued", "Queued", (t) => t.queued_at_ms],
  ["took", "Took", (t) => tookSeconds(t)],
  ["reason", "Reason", (t) => (t.status_msg || t.hold_reason || "").toLowerCase()],
];

// Set by showBatch: draw the page again (after an action changed the batch).
let reloadBatch = () => {};

function tookSeconds(t) {
  const start = t.submitted_at_ms || t.queued_at_ms;
  return t.finished_at_ms && start ? (t.finished_at_ms - start) / 1000 : -1;
}

function money(cash) {
  return cash.map((c) => `${c.amount} ${c.currency || "cash"}`).join(" · ");
}

function batchHeader(b) {
  const { bar, pct, eta } = batchProgress(b);  // app.js
  const cap = b.max_units === null ? "none" : `${b.max_units} units (${b.sent_estimate} sent)`;
  const facts = [
    ["Progress", `${fmtInt(b.done)} / ${fmtInt(b.total)} done · ${pct}%`, "progress"],
    ["ETA", eta, "eta"],
    ["Units estimated", `≈${b.units_estimated}`, "estimated"],
    ["Units spent", b.units_spent, "spent"],
    ["Cash", b.cash.length ? money(b.cash) : "—", "cash"],
    ["Budget cap", cap, "cap"],
  ];
  return h("section", { class: "panel", id: "batch-head" },
    h("div", { class: "task-head" }, h("h1", {}, `Batch ${b.name}`), h("span", { class: "spacer" }),
      h("button", { type: "button", class: "ghost", id: "retry-failed", disabled: b.counts.failed + b.counts.rejected === 0, onclick: () => retryFailed(b) }, "Retry all failed"),
      h("button", { type: "button", class: "ghost", id: "download-all", disabled: b.counts.succeed === 0, onclick: () => downloadAll(b) }, "Download all")),
    bar,
    b.hold_reason ? h("div", { class: "reason-box", id: "hold-reason" },
      `${fmtInt(b.held)} task(s) ${b.hold_reason} · klingwatch resume --raise-cap N --batch ${b.name}`) : null,
    h("dl", { class: "facts" }, facts.map(([k, v, id]) => h("div", { "data-fact": id }, h("dt", {}, k), h("dd", {}, v)))),
    h("p", { class: "muted", id: "batch-note" }));
}

async function retryFailed(b) {
  const n = b.counts.failed + b.counts.rejected;
  if (!confirm(`Queue the ${n} failed task(s) of ${b.name} again as new tasks? Kling bills them again.`)) return;
  try {
    const out = await post(`/api/batches/${encodeURIComponent(b.name)}/retry-failed`, { confirm: true });
    await reloadBatch();
    $("batch-note").textContent = `${out.queued} task(s) queued again`;
  } catch (e) { alert(e.message); }
}

async function downloadAll(b) {
  try {
    const out = await post(`/api/batches/${encodeURIComponent(b.name)}/download`);
    $("batch-note").textContent = `downloading ${out.succeeded} succeeded task(s) into ${out.folder}`;
  } catch (e) { alert(e.message); }
}

function reasonsPanel(b) {
  return h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Failures by reason")),
    h("ul", { class: "attention", id: "failure-reasons" }, b.failure_reasons.length
      ? b.failure_reasons.map((r) => h("li", { "data-reason": r.reason }, h("b", {}, fmtInt(r.tasks)), h("span", {}, r.reason)))
      : [h("li", { class: "empty" }, "No failures.")]));
}

function spendTable(rows, id) {
  return h("table", { class: "tasks", id },
    h("thead", {}, h("tr", {}, h("th", {}, "Day"), h("th", {}, "Tasks"), h("th", {}, "≈Units"), h("th", {}, "Units spent"))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", { "data-day": r.day },
      h("td", {}, r.day), h("td", {}, fmtInt(r.tasks)), h("td", {}, r.units_estimated), h("td", {}, r.units_spent)))
      : [h("tr", {}, h("td", { colspan: "4", class: "empty" }, "Nothing spent yet."))]));
}

function taskTable(tasks, sort) {
  const [key, dir] = sort;
  const read = BATCH_COLUMNS.find((c) => c[0] === key)[2];
  const rows = [...tasks].sort((a, b) => {
    const x = read(a), y = read(b);
    return (x < y ? -1 : x > y ? 1 : a.local_id - b.local_id) * dir;
  });
  const head = BATCH_COLUMNS.map(([k, label]) => h("th", {
    "data-sort": k, class: "sortable", "aria-sort": k === key ? (dir > 0 ? "ascending" : "descending") : "none",
  }, label, k === key ? (dir > 0 ? " ▲" : " ▼") : ""));
  return h("table", { class: "tasks", id: "batch-tasks" }, h("thead", {}, h("tr", {}, head)),
    h("tbody", {}, rows.map((t) => h("tr", { "data-task": String(t.local_id) },
      h("td", {}, h("a", { href: `/task/${t.local_id}` }, `#${t.local_id}`)),
      h("td", {}, badge(t.status), t.hold_reason ? h("span", { class: "muted" }, " held") : ""),
      h("td", { class: "prompt", title: t.prompt || "" }, h("a", { href: `/task/${t.local_id}` }, taskLabel(t))),
      h("td", {}, [t.model, t.mode].filter(Boolean).join(" · ")),
      h("td", {}, t.units_estimated || "—"),
      h("td", {}, t.units || "—"),
      h("td", { title: t.queued_at_iso }, ago(t.queued_at_ms)),
      h("td", {}, tookOf(t)),
      h("td", { class: "row-reason" }, t.status_msg || t.hold_reason || "")))));
}

async function showBatch(name) {
  $("view-batch").hidden = false;
  document.title = `${name} · klingwatch`;
  refreshAlerts();
  let sort = ["id", 1];
  let tasks = [];
  function drawTasks() {
    $("batch-table").replaceChildren(taskTable(tasks, sort));
    for (const th of $("batch-table").querySelectorAll("th[data-sort]")) {
      th.addEventListener("click", () => {
        sort = [th.dataset.sort, sort[0] === th.dataset.sort ? -sort[1] : 1];
        drawTasks();
      });
    }
  }
  async function load() {
    let b;
    try {
      [b, tasks] = await Promise.all([
        api(`/api/batches/${encodeURIComponent(name)}`),
        api(`/api/batches/${encodeURIComponent(name)}/tasks`),
      ]);
    } catch (e) {
      $("batch").replaceChildren(h("section", { class: "panel" }, h("h2", {}, "Batch not found"), h("p", {}, e.message)));
      return;
    }
    const note = $("batch-note") ? $("batch-note").textContent : "";
    $("batch").replaceChildren(batchHeader(b),
      h("div", { class: "grid-2" }, reasonsPanel(b),
        h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Spend per day")),
          h("div", { class: "table-wrap" }, spendTable(b.spend_by_day, "batch-spend")))),
      h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Tasks"),
        h("span", { class: "muted" }, `${fmtInt(tasks.length)} of ${fmtInt(b.total)} · click a column to sort`)),
        h("div", { class: "table-wrap", id: "batch-table" })));
    $("batch-note").textContent = note;
    drawTasks();
    stamp();
  }
  reloadBatch = load;
  await load();
  listen(debounce(load, 400));
}

// The overview's spend panel: per day, all batches.
async function refreshSpend() {
  try {
    const report = await api("/api/spend?by=day");
    const rows = report.rows.map((r) => ({ ...r, day: r.day })).reverse().slice(0, 14);
    $("spend-days").replaceChildren(spendTable(rows, "spend-table"));
    const t = report.total;
    $("spend-total").textContent = `≈${t.units_estimated} estimated · ${t.units_spent} spent${t.cash.length ? ` · ${money(t.cash)}` : ""}`;
  } catch (e) { console.error(e); }
}
