// surge console: polls GET /admin/overview with the admin token as a
// bearer token. The token lives in sessionStorage (gone when the tab
// closes) and in Authorization headers, never in a URL.
"use strict";

const POLL_MS = 1500;
const TOKEN_KEY = "surge.adminToken";

const $ = (id) => document.getElementById(id);
let timer = null;
// Dead letters replayed or discarded from this page, hidden until the
// overview (cached up to a second on the gateway) stops listing them.
const handled = new Map();

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// cell is one table cell; its data-label names the column on a phone,
// where each row is a card.
function cell(label, content, cls) {
  return el("td", { "data-label": label, class: cls }, el("span", {}, ...[].concat(content)));
}

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const init = { method, headers: { Authorization: "Bearer " + token }, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 401) throw Object.assign(new Error("the admin token was refused"), { unauthorized: true });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { const e = await r.json(); if (e.error && e.error.message) msg = e.error.message; else if (e.message) msg = e.message; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.status === 204 ? null : r.json();
}

// --- formatting ---------------------------------------------------------

function rate(n) { return n >= 100 ? Math.round(n).toLocaleString() : n >= 10 ? n.toFixed(1) : n.toFixed(2); }
function ms(n) { return !n ? "–" : n >= 1000 ? (n / 1000).toFixed(2) + " s" : n >= 10 ? n.toFixed(0) + " ms" : n.toFixed(2) + " ms"; }
function bytes(n) {
  if (!n) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}
function age(sec) { return sec < 60 ? sec.toFixed(1) + " s" : Math.round(sec / 60) + " min"; }
function when(t) {
  const d = new Date(t);
  return d.toLocaleDateString() === new Date().toLocaleDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

// --- rendering ----------------------------------------------------------

function fill(table, rows) {
  $(table).querySelector("tbody").replaceChildren(...rows);
}

function renderFunctions(fns) {
  $("functions-count").textContent = "(" + fns.length + ")";
  fill("functions", fns.map((f) => el("tr", { "data-function": f.name },
    cell("Function", [el("span", { class: "mono" }, f.name), el("span", { class: "sub" }, f.handler)]),
    cell("Trigger", [f.route || f.trigger, f.route ? el("span", { class: "sub" }, f.trigger) : null], "wide"),
    cell("Instances", [f.instances + (f.hosts > 1 ? " on " + f.hosts + " hosts" : ""),
      f.autoscale ? el("span", { class: "sub autoscale" }, "auto " + f.autoscale.min + "-" + f.autoscale.max + " per host, wanted " + f.autoscale.desired) : null],
      f.instances ? "num" : "num bad"),
    cell("Calls/s", rate(f.calls_per_sec), "num calls"),
    cell("Errors/s", [rate(f.errors_per_sec), el("span", { class: "sub" }, f.errors.toLocaleString() + " total")],
      f.errors_per_sec > 0 ? "num bad" : "num"),
    cell("p99", ms(f.p99_ms), "num"),
    cell("Revision", [el("span", { class: "mono" }, f.revision.slice(0, 12)),
      ...(f.host_errors || []).map((e) => el("span", { class: "sub bad" }, e))]),
  )));
}

// Every request function has an async-call consumer on CALLS; those with
// nothing to do are counted, not listed.
function renderConsumers(all) {
  const idle = (c) => c.stream === "CALLS" && !c.backlog && !c.ack_pending && !c.redelivered;
  const cs = all.filter((c) => !idle(c));
  const hidden = all.length - cs.length;
  $("consumers-idle").textContent = hidden ? hidden + " idle async-call consumer" + (hidden === 1 ? "" : "s") + " (stream CALLS) not shown." : "";
  $("consumers-idle").hidden = !hidden;
  fill("consumers", cs.map((c) => el("tr", { "data-consumer": c.stream + "/" + c.durable },
    cell("Stream", el("span", { class: "mono" }, c.stream)),
    cell("Durable", el("span", { class: "mono" }, c.durable)),
    cell("Backlog", c.backlog.toLocaleString(), c.backlog > 1000 ? "num warn" : "num"),
    cell("Ack pending", c.ack_pending.toLocaleString(), "num"),
    cell("Redelivered", c.redelivered.toLocaleString(), c.redelivered ? "num warn" : "num"),
  )));
}

function payload(d) {
  const text = d.payload_encoding === "base64" ? "(base64) " + d.payload : d.payload;
  return d.payload_truncated ? text + " … (the start of a longer payload; surge dlq ls has it whole)" : text;
}

async function act(fn, seq, kind, buttons) {
  buttons.forEach((b) => { b.disabled = true; });
  $("action-error").hidden = true;
  try {
    if (kind === "replay") {
      const rep = await api("POST", "/admin/dlq/" + encodeURIComponent(fn) + "/replay", { seq: [seq] });
      const r = rep.results && rep.results[0];
      if (!r || !r.replayed) throw new Error((r && r.error) || "not replayed");
    } else {
      await api("DELETE", "/admin/dlq/" + encodeURIComponent(fn) + "/" + seq);
    }
    handled.set(seq, Date.now());
    const card = document.querySelector('.dead-letter[data-seq="' + seq + '"]');
    if (card) card.remove();
    refresh();
  } catch (e) {
    if (e.unauthorized) return signOut(e.message);
    $("action-error").textContent = kind + " of dead letter " + seq + " failed: " + e.message;
    $("action-error").hidden = false;
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function renderDeadLetters(groups) {
  const now = Date.now();
  for (const [seq, t] of handled) if (now - t > 10000) handled.delete(seq);
  let total = 0;
  const out = [];
  for (const g of groups) {
    const shown = g.dead_letters.filter((d) => !handled.has(d.seq));
    const left = g.total - (g.dead_letters.length - shown.length);
    if (left <= 0) continue;
    total += left;
    out.push(el("div", { class: "dlq-function", "data-function": g.function },
      el("h3", {}, el("span", { class: "mono" }, g.function), el("small", { class: "quiet" },
        left + " dead letter" + (left === 1 ? "" : "s") + (left > shown.length ? ", oldest " + shown.length + " shown" : ""))),
      ...shown.map((d) => {
        const replay = el("button", { type: "button", class: "replay" }, "Replay");
        const discard = el("button", { type: "button", class: "secondary discard" }, "Discard");
        replay.addEventListener("click", () => act(g.function, d.seq, "replay", [replay, discard]));
        discard.addEventListener("click", () => {
          if (confirm("Discard dead letter " + d.seq + " of " + g.function + "?")) act(g.function, d.seq, "discard", [replay, discard]);
        });
        return el("div", { class: "dead-letter", "data-seq": d.seq },
          el("div", { class: "meta" },
            el("span", {}, "#" + d.seq), el("span", { class: "mono" }, d.subject),
            el("span", { class: "attempts" }, d.deliveries + " attempt" + (d.deliveries === 1 ? "" : "s")),
            el("span", {}, when(d.time))),
          el("div", { class: "err" }, d.error || "(no error recorded)"),
          el("pre", { class: "payload" }, payload(d)),
          el("div", { class: "actions" }, replay, discard));
      })));
  }
  $("dead-letters").replaceChildren(...out);
  $("dead-letters-count").textContent = total ? "(" + total + ")" : "";
  $("dead-letters-none").hidden = total > 0;
}

function renderHosts(hosts) {
  fill("hosts", hosts.map((h) => el("tr", { "data-host": h.host },
    cell("Host", el("span", { class: "mono" }, h.host)),
    cell("Heartbeat", age(h.heartbeat_age_sec) + " ago", h.heartbeat_age_sec > 6 ? "num bad" : "num"),
    cell("Memory", bytes(h.memory_bytes), "num"),
    cell("Goroutines", h.goroutines ? h.goroutines.toLocaleString() : "–", "num"),
    cell("Instances", [String(h.instances), el("span", { class: "sub" }, h.functions + " function" + (h.functions === 1 ? "" : "s"))], "num"),
  )));
}

function renderHistory(revs) {
  fill("history", revs.map((r) => el("tr", {},
    cell("When", when(r.time)),
    cell("Function", el("span", { class: "mono" }, r.function)),
    cell("Revision", r.removed ? el("span", { class: "bad" }, "removed") : [el("span", { class: "mono" }, r.revision.slice(0, 12)), el("span", { class: "sub" }, r.handler)]),
    cell("Seq", r.seq, "num"),
  )));
}

function render(ov) {
  renderFunctions(ov.functions);
  renderConsumers(ov.consumers);
  renderDeadLetters(ov.dead_letters);
  renderHosts(ov.hosts);
  renderHistory(ov.history);
  const p = ov.problems || [];
  $("problems").textContent = p.join("; ");
  $("problems").hidden = p.length === 0;
  $("updated").textContent = "updated " + new Date(ov.at).toLocaleTimeString();
  $("live").className = "dot live";
}

// --- polling and sign-in ------------------------------------------------

async function refresh() {
  clearTimeout(timer);
  try {
    render(await api("GET", "/admin/overview"));
  } catch (e) {
    if (e.unauthorized) return signOut(e.message);
    $("live").className = "dot down";
    $("updated").textContent = "not updated: " + e.message;
  }
  timer = setTimeout(refresh, POLL_MS);
}

function showDashboard() {
  $("signin-view").hidden = true;
  $("dashboard").hidden = false;
  $("status").hidden = false;
  refresh();
}

function signOut(why) {
  clearTimeout(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  $("dashboard").hidden = true;
  $("status").hidden = true;
  $("signin-view").hidden = false;
  $("signin-error").textContent = why ? "Signed out: " + why + "." : "";
  $("signin-error").hidden = !why;
  $("token").value = "";
}

async function signIn(ev) {
  ev.preventDefault();
  const token = $("token").value;
  const err = $("signin-error");
  err.hidden = true;
  $("signin-submit").disabled = true;
  try {
    const r = await fetch("/admin/overview", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (r.status === 401) throw new Error("That admin token was refused.");
    if (!r.ok) throw new Error("The gateway answered " + r.status + "; try again.");
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    showDashboard();
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
  } finally {
    $("signin-submit").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut(""));
  document.addEventListener("visibilitychange", () => { if (!document.hidden && sessionStorage.getItem(TOKEN_KEY)) refresh(); });
  if (sessionStorage.getItem(TOKEN_KEY)) showDashboard();
});
