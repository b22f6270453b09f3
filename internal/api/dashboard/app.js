// tend's dashboard: asks for a token once (kept in sessionStorage), then
// polls the status endpoints and follows the journal's SSE stream with it.
// Everything is built with textContent: nothing from the API becomes markup.
"use strict";

const tokenKey = "tend-token";
const maxEntries = 300;
let token = sessionStorage.getItem(tokenKey) || "";
let role = "";
let lastSeq = 0;
let refreshTimer = 0;
let polling = 0;
let following = false;

const $ = (id) => document.getElementById(id);

// pressed: when a pointer went down in the services panel (0: none is);
// stale: a refresh waited for its release. A release the page never saw
// (outside the window) holds refreshes back for 2 s at most.
let pressed = 0, stale = false;
document.addEventListener("pointerdown", (e) => { if ($("services").contains(e.target)) pressed = Date.now(); }, true);
for (const end of ["pointerup", "pointercancel"]) {
  document.addEventListener(end, () => {
    if (!pressed) return;
    pressed = 0;
    if (stale) { stale = false; setTimeout(refresh, 0); } // after the click it ends
  }, true);
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === "") continue;
    e.append(k instanceof Node ? k : String(k));
  }
  return e;
}

function headers(extra) {
  const h = Object.assign({}, extra);
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

// api calls a /v1 path; a 401 sends the user back to the token form.
async function api(method, path, body) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (r.status === 401) { forget("the token was refused: " + (data && data.error || r.status)); throw new Error("unauthenticated"); }
  if (!r.ok) { const err = new Error(data && data.error || ("HTTP " + r.status)); err.status = r.status; throw err; }
  return data;
}

function forget(why) {
  token = "";
  role = "";
  sessionStorage.removeItem(tokenKey);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = why || "";
  $("who").textContent = "";
}

async function start() {
  let me;
  try { me = await api("GET", "/v1/whoami"); } catch (e) {
    if (e.message !== "unauthenticated") forget("cannot reach tend: " + e.message);
    return;
  }
  role = me.role;
  $("who").textContent = (me.name || "socket") + " (" + me.role + ")";
  $("who").dataset.role = me.role;
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = !token;
  api("GET", "/v1/version").then((v) => { $("version").textContent = v.version; }).catch(() => {});
  refresh();
  if (!polling) polling = setInterval(() => { if (role) refresh(); }, 2000);
  if (!following) follow();
}

// ---- services -------------------------------------------------------------

function ms(ns) { return ns ? (ns / 1e6).toFixed(ns < 1e7 ? 1 : 0) + "ms" : "-"; }

async function refresh() {
  clearTimeout(refreshTimer);
  let reps, scale, traffic;
  try {
    [reps, scale, traffic] = await Promise.all([api("GET", "/v1/replicas"), api("GET", "/v1/scale"), api("GET", "/v1/traffic")]);
  } catch (e) {
    if (e.message !== "unauthenticated") $("notice").textContent = "status: " + e.message;
    return;
  }
  const box = $("services");
  // Keep what the user is typing: no re-render under a focused input.
  if (box.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
  // Nor between a press and its release: a click is both on the same
  // element, and a button replaced in between never gets it (the
  // dashboard test's restart was lost so, 2026-12-07).
  if (pressed && Date.now() - pressed < 2000) { stale = true; return; }
  const key = (p, s) => p + "/" + s;
  const svcs = new Map();
  const get = (p, s) => {
    const k = key(p, s);
    if (!svcs.has(k)) svcs.set(k, { project: p, service: s, reps: [], scale: null, traffic: null });
    return svcs.get(k);
  };
  for (const st of scale) get(st.project, st.service).scale = st;
  for (const r of reps) get(r.project, r.service).reps.push(r);
  for (const t of traffic) get(t.Project, t.Service).traffic = t;
  const cards = [...svcs.values()].sort((a, b) => key(a.project, a.service).localeCompare(key(b.project, b.service))).map(card);
  box.replaceChildren(...(cards.length ? cards : [el("p", { class: "muted" }, "no services: tend up")]));
}

function card(s) {
  const st = s.scale || {};
  const quarantine = s.reps.map((r) => r.quarantine).find((q) => q) || "";
  const failed = s.reps.some((r) => r.failed);
  const badges = [];
  if (st.auto) badges.push(el("span", { class: "badge", "data-autoscale": "on" }, "autoscaled " + st.min + "–" + st.max));
  else if (st.min || st.max) badges.push(el("span", { class: "badge", "data-autoscale": "pinned" }, "pinned (autoscale " + st.min + "–" + st.max + ")"));
  if (quarantine) badges.push(el("span", { class: "badge bad", "data-quarantine": quarantine }, quarantine));
  if (failed) badges.push(el("span", { class: "badge bad" }, "gave up"));
  if (st.rollout) badges.push(el("span", { class: "badge warn" }, "rolling out"));
  const facts = [
    el("span", { class: "counts" }, `${st.ready ?? "?"} ready / ${st.current ?? "?"} running / ${st.desired ?? "?"} desired`),
  ];
  if (st.metric || st.target) facts.push(el("span", { class: "latency" }, "latency " + (st.metric || "-") + " against target " + (st.target || "-")));
  if (s.traffic) {
    const t = s.traffic;
    facts.push(el("span", {}, `${t.Rate.toFixed(1)} req/s, p50 ${ms(t.P50)} p95 ${ms(t.P95)} p99 ${ms(t.P99)}`));
  }
  for (const [label, v] of [["held", st.held], ["no effect", st.no_effect], ["last", st.last]]) {
    if (v) facts.push(el("span", { class: "muted" }, label + ": " + v));
  }
  const nextTrial = s.reps.map((r) => r.next_trial).find((t) => t);
  if (nextTrial) facts.push(el("span", { class: "muted" }, "next trial " + new Date(nextTrial).toLocaleTimeString()));
  const perReplica = new Map(((s.traffic && s.traffic.Replicas) || []).map((r) => [r.Replica, r]));
  const rows = s.reps.slice().sort((a, b) => a.slot - b.slot).map((r) => {
    const t = perReplica.get(r.service + "/" + r.slot);
    return el("tr", { class: "replica", "data-container": r.container, "data-state": r.state },
      el("td", {}, r.slot), el("td", {}, r.container || "-"),
      el("td", { class: "rstate" }, r.state + (r.state === "exited" ? ` (${r.exit_code})` : "")),
      el("td", {}, r.live), el("td", { class: r.ready ? "yes" : "no" }, r.ready ? "yes" : "no"),
      el("td", { class: "restarts" }, r.restarts),
      el("td", {}, r.started_at ? new Date(r.started_at).toLocaleTimeString() : "-"),
      el("td", {}, t ? `p95 ${ms(t.P95)}${t.Ejected ? " ejected" : ""}${t.Draining ? " draining" : ""}` : "-"),
      el("td", { class: "probe" }, [r.probe, r.note].filter((x) => x).join(" · ")));
  });
  const table = el("table", {},
    el("thead", {}, el("tr", {}, ["slot", "container", "state", "live", "ready", "restarts", "started", "traffic", "last check"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
  return el("section", { class: "service", "data-service": s.service, "data-project": s.project },
    el("h3", {}, el("span", { class: "muted" }, s.project + " /"), s.service, badges),
    el("div", { class: "facts" }, facts), table, role === "admin" ? actions(s, st, quarantine || failed) : null);
}

// actions are rendered for an admin token only; the server checks anyway.
function actions(s, st, healable) {
  const base = `/v1/projects/${encodeURIComponent(s.project)}/services/${encodeURIComponent(s.service)}/`;
  const count = el("input", { type: "number", min: "0", value: st.desired ?? s.reps.length, "aria-label": "replicas" });
  const run = (what, body) => async () => {
    try {
      const out = await api("POST", base + what, body);
      $("notice").textContent = `${s.service}: ${what}: ${out.message || "done"}`;
    } catch (e) {
      $("notice").textContent = `${s.service}: ${what}: ${e.message}`;
    }
    refresh();
  };
  return el("div", { class: "actions" },
    count,
    el("button", { class: "action", "data-action": "scale", onclick: () => run("scale", { replicas: Number(count.value) })() }, "Scale"),
    (st.min || st.max) ? el("button", { class: "action", "data-action": "auto", onclick: run("scale", { auto: true }) }, "Autoscale") : null,
    el("button", { class: "action", "data-action": "restart", title: "restart the running replicas, one after the other", onclick: run("restart") }, "Restart"),
    el("button", { class: "action", "data-action": "heal", disabled: !healable, title: healable ? "lift the quarantine, fresh restart budget" : "not quarantined", onclick: run("heal") }, "Heal"),
    el("button", { class: "action", "data-action": "rollback", title: "back to the spec it ran before", onclick: run("rollback") }, "Roll back"));
}

// ---- journal ----------------------------------------------------------------

function entry(e, fresh) {
  const where = [e.project, e.service && e.service + (e.slot ? "/" + e.slot : "")].filter((x) => x).join(" ");
  return el("li", { class: fresh ? "fresh" : "", "data-seq": e.seq, "data-project": e.project || "", "data-service": e.service || "", "data-action": e.action, "data-reason": e.reason || "", "data-container": e.container || "" },
    el("span", { class: "muted" }, new Date(e.time).toLocaleTimeString() + " "),
    where + " ", el("span", { class: "act " + e.action }, e.action),
    e.reason ? " (" + e.reason + ")" : "", e.message ? ": " + e.message : "",
    e.error ? el("span", { class: "error" }, " error: " + e.error) : null);
}

function addEntry(e, fresh) {
  if (e.seq <= lastSeq) return;
  lastSeq = e.seq;
  const list = $("journal");
  list.prepend(entry(e, fresh));
  while (list.children.length > maxEntries) list.lastChild.remove();
  // An action changes the picture: refresh soon, once for a burst.
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 300);
}

function streamState(s) {
  const b = $("stream-state");
  b.textContent = s;
  b.className = "state " + s;
}

// follow reads the SSE stream with fetch (EventSource cannot send the
// Authorization header) and reconnects after the last entry it saw.
async function follow() {
  following = true;
  try { await followLoop(); } finally { following = false; }
}

async function followLoop() {
  for (;;) {
    try {
      const q = lastSeq ? "after=" + lastSeq : "limit=100";
      const r = await fetch("/v1/events?follow=true&" + q, { headers: headers({ Accept: "text/event-stream" }) });
      if (r.status === 401) { forget("the token was refused"); return; }
      if (!r.ok) throw new Error("HTTP " + r.status);
      streamState("live");
      settle();
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          sseBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (_) { /* reconnect below */ }
    if (!role) return; // the token was forgotten
    streamState("reconnecting");
    await new Promise((res) => setTimeout(res, 2000));
  }
}

// The entries of the first burst are history; those after it are news,
// flashed as they come.
let backlog = true;
function settle() {
  clearTimeout(settle.t);
  settle.t = setTimeout(() => { backlog = false; }, 500);
}

function sseBlock(block) {
  let event = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // keep-alive
    const [k, ...rest] = line.split(":");
    const v = rest.join(":").replace(/^ /, "");
    if (k === "event") event = v;
    else if (k === "data") data += v;
  }
  if (event !== "entry" || !data) return;
  addEntry(JSON.parse(data), !backlog);
  if (backlog) settle();
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  $("token").value = "";
  sessionStorage.setItem(tokenKey, token);
  start();
});
$("logout").addEventListener("click", () => { forget(""); location.reload(); });
start();
