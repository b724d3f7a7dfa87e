/*  meshbus monitor page: polls the monitor's JSON API once a second and
    draws the mesh (SVG), the node table, the selected node's pattern
    tables (subscriptions, services, calls, queues, with rates), and the
    event feed, which comes as server-sent events. No library: it ships inside the tool.
    Text from the mesh only ever goes through textContent, never HTML.  */
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { nodes: [], links: [], selected: null, sort: "name", reverse: false,
                nextEvent: 0, failures: 0 };

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                   : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function rate(x) { return x >= 100 ? x.toFixed(0) : x.toFixed(1); }
function rtt(us) { return us === null || us === undefined ? "-" : (us / 1000).toFixed(2) + " ms"; }
function uptime(ms) {
  if (ms === null || ms === undefined) return "-";
  const s = Math.floor(ms / 1000);
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d" + String(Math.floor(s / 3600) % 24).padStart(2, "0") + "h";
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(url + ": " + response.status);
  return response.json();
}

//  Nodes on a circle, in id order so a node keeps its place as others come and go
function layout(nodes) {
  const byId = [...nodes].sort((a, b) => a.id < b.id ? -1 : 1);
  const pos = {};
  const n = byId.length, cx = 300, cy = 220, r = n > 1 ? 170 : 0;
  byId.forEach((node, i) => {
    const angle = -Math.PI / 2 + 2 * Math.PI * i / Math.max(n, 1);
    pos[node.id] = { x: cx + r * Math.cos(angle), y: cy + r * Math.sin(angle) };
  });
  return pos;
}

function drawGraph() {
  const pos = layout(state.nodes);
  const links = document.getElementById("links"), nodes = document.getElementById("nodes");
  links.replaceChildren();
  nodes.replaceChildren();
  for (const link of state.links) {
    const a = pos[link.a], b = pos[link.b];
    if (!a || !b) continue;
    const g = el("svg:g", { class: "link " + link.state + (link.drops > 0 ? " drops" : ""),
                            "data-a": link.a, "data-b": link.b, "data-state": link.state });
    g.appendChild(el("svg:line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y,
                                   "stroke-width": 1 + Math.min(6, Math.log10(1 + link.rate) * 2) }));
    let label = rate(link.rate) + "/s";
    if (link.drops > 0) label += " " + link.drops + " dropped";
    if (link.rtt_us !== null) label += " " + rtt(link.rtt_us);
    g.appendChild(el("svg:text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 3 }, label));
    links.appendChild(g);
  }
  for (const node of state.nodes) {
    const p = pos[node.id];
    const g = el("svg:g", { class: "node " + node.state + (node.id === state.selected ? " selected" : ""),
                            "data-id": node.id, "data-name": node.name, "data-state": node.state,
                            transform: "translate(" + p.x + "," + p.y + ")" });
    g.appendChild(el("svg:circle", { r: node.self ? 16 : 13, class: node.state }));
    g.appendChild(el("svg:text", { y: 30 }, node.name || node.id.slice(0, 8)));
    g.appendChild(el("svg:title", {}, node.name + " " + node.id + " " + node.state +
                                      (node.left ? " (" + node.left + ")" : "")));
    g.addEventListener("click", () => select(node.id));
    nodes.appendChild(g);
  }
}

function drawTable() {
  const key = state.sort, dir = state.reverse ? -1 : 1;
  const rows = [...state.nodes].sort((a, b) => {
    let x = a[key], y = b[key];
    if (x === null || x === undefined) x = -1;
    if (y === null || y === undefined) y = -1;
    const numeric = typeof x === "number";
    const c = x < y ? -1 : x > y ? 1 : (a.id < b.id ? -1 : 1);
    return (numeric ? -c : c) * dir;          //  numbers biggest first
  });
  const body = document.querySelector("#nodes-table tbody");
  body.replaceChildren();
  for (const n of rows) {
    const tr = el("tr", { class: "node-row " + n.state + (n.id === state.selected ? " selected" : ""),
                          "data-id": n.id, "data-state": n.state });
    const host = (n.endpoint || "").replace(/^tcp:\/\//, "");
    const cells = [n.name + (n.self ? " (this monitor)" : ""), n.id.slice(0, 8), host, n.state,
                   uptime(n.uptime_ms), n.self ? "-" : rtt(n.rtt_us), rate(n.rate_in),
                   rate(n.rate_out), String(n.drops), n.state === "GONE" ? (n.left || "") : n.drop_reason];
    cells.forEach((text, i) => tr.appendChild(el("td", { class: i >= 4 && i <= 8 ? "num" : "" }, text)));
    tr.addEventListener("click", () => select(n.id));
    body.appendChild(tr);
  }
}

//  A table of rows: columns are [title, field, format]; format "rate"
//  for per-second figures, "name" for a row's name (text only)
function patternTable(kind, caption, rows, more, columns) {
  const table = el("table", { class: "pattern", "data-pattern": kind });
  table.appendChild(el("caption", {}, caption));
  const head = el("tr");
  columns.forEach(([title]) => head.appendChild(el("th", {}, title)));
  table.appendChild(head);
  for (const row of rows) {
    const tr = el("tr", { "data-name": String(row[columns[0][1]]) });
    for (const [, field, format] of columns) {
      const v = row[field];
      const text = v === null || v === undefined ? "-"
                 : format === "rate" ? rate(v) : format === "ms" ? v.toFixed(2) : String(v);
      tr.appendChild(el("td", { class: format === "name" ? "" : "num" }, text));
    }
    table.appendChild(tr);
  }
  if (more > 0) {
    const tr = el("tr", { class: "more" });
    tr.appendChild(el("td", { colspan: columns.length }, "+" + more + " more (the busiest " +
                                                         rows.length + " are shown)"));
    table.appendChild(tr);
  }
  return table;
}

async function drawPatterns() {
  const box = document.getElementById("patterns");
  const node = state.nodes.find(n => n.id === state.selected);
  document.getElementById("patterns-title").textContent =
    node ? "Patterns of " + node.name + " (" + node.id.slice(0, 8) + ")" : "Patterns";
  if (!node) { box.replaceChildren(); return; }
  let detail;
  try { detail = await getJSON("/api/node/" + node.id); } catch (e) { return; }
  const p = detail.patterns || {};
  const out = [];
  const add = (kind, caption, table, columns) => {
    const rows = p[table] || [];
    if (rows.length) out.push(patternTable(kind, caption, rows, p[table + ".more"] || 0, columns));
  };
  add("subscriptions", "Subscriptions", "subscriptions",
      [["pattern", "pattern", "name"], ["received", "received"], ["per second", "rate", "rate"]]);
  add("services", "Services served here", "services",
      [["service", "service", "name"], ["served", "served"], ["calls/s", "rate", "rate"],
       ["errors", "errors"], ["errors/s", "errors_rate", "rate"]]);
  add("calls", "Services called from here", "calls",
      [["service", "service", "name"], ["calls", "calls"], ["calls/s", "rate", "rate"],
       ["errors", "errors"], ["timeouts", "timeouts"], ["mean ms", "mean_ms", "ms"],
       ["p99 \u2264 ms", "p99_le_ms", "ms"]]);
  add("queues", "Queues pushed to from here", "queues",
      [["queue", "queue", "name"], ["pending", "pending"], ["ready", "ready"],
       ["in flight", "in_flight"], ["delayed", "delayed"], ["dead letters", "dead"],
       ["done", "done"], ["done/s", "rate", "rate"], ["workers", "workers"]]);
  add("works", "Queues worked here", "works",
      [["queue", "queue", "name"], ["handled", "handled"], ["jobs/s", "rate", "rate"],
       ["failed", "failed"]]);
  if (!out.length)
    out.push(el("p", {}, detail.stats ? "No subscriptions, services, calls or queues."
                                      : "This node did not answer."));
  box.replaceChildren(...out);
}

function select(id) {
  state.selected = id;
  drawGraph();
  drawTable();
  drawPatterns();
}

async function pollNodes() {
  const data = await getJSON("/api/nodes");
  state.nodes = data.nodes;
  state.links = data.links;
  if (!state.selected || !state.nodes.some(n => n.id === state.selected))
    state.selected = data.self;
  const up = state.nodes.filter(n => n.state !== "GONE").length;
  document.getElementById("summary").textContent =
    up + " nodes, " + state.links.length + " links" +
    (data.truncated ? ", " + data.truncated + " not shown" : "");
  document.body.dataset.refreshed = data.refreshed_ms;
  drawGraph();
  drawTable();
  drawPatterns();
}

function showEvent(e) {
  if (e.seq < state.nextEvent) return;       //  seen already (a reconnect)
  state.nextEvent = e.seq + 1;
  const list = document.getElementById("events");
  const li = el("li", { class: e.type || "", "data-type": e.type || "", "data-node": e.node || "" });
  li.appendChild(el("span", { class: "time" }, new Date(e.time_ms).toLocaleTimeString() + " "));
  li.appendChild(el("span", { class: "type" }, e.type));
  li.appendChild(el("span", {}, (e.name || "?") + " " + String(e.node || "").slice(0, 8) +
                                (e.detail ? " " + e.detail : "")));
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}

//  The feed comes as server-sent events; where EventSource is missing, or
//  the stream broke and the browser gave up, it is polled
function streamEvents() {
  if (!window.EventSource) return false;
  const source = new EventSource("/api/events/stream?since=" + state.nextEvent);
  source.onmessage = m => {
    try { showEvent(JSON.parse(m.data)); } catch (err) { /* a line we cannot read */ }
    document.body.dataset.events = "stream";
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) { state.stream = null; document.body.dataset.events = "poll"; }
  };
  state.stream = source;
  return true;
}

async function pollEvents() {
  if (state.stream) return;
  const data = await getJSON("/api/events?since=" + state.nextEvent);
  for (const e of data.events) showEvent(e);
  state.nextEvent = Math.max(state.nextEvent, data.next);
}

async function tick() {
  const status = document.getElementById("status");
  try {
    await pollNodes();
    await pollEvents();
    state.failures = 0;
    status.textContent = "";
    status.className = "status";
  } catch (e) {
    state.failures++;
    status.textContent = "monitor not answering (" + state.failures + ")";
    status.className = "status stale";
  }
  setTimeout(tick, 1000);
}

document.querySelectorAll("#nodes-table th[data-sort]").forEach(th =>
  th.addEventListener("click", () => {
    if (state.sort === th.dataset.sort) state.reverse = !state.reverse;
    else { state.sort = th.dataset.sort; state.reverse = false; }
    drawTable();
  }));
streamEvents();
tick();
