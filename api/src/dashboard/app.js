// Relay's dashboard: plain DOM, this origin's API only. Every value from the API is set as
// text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const auth = { token: null, admin: null };
let leases = [];
let clock = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function say(text) { $("status").textContent = text || ""; }

async function api(method, path, credential) {
  const headers = {};
  const bearer = credential || auth.token || auth.admin;
  if (bearer) headers["Authorization"] = "Bearer " + bearer;
  const res = await fetch(path, { method, headers });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = body.error || {};
    const err = new Error((e.message || res.statusText) + (e.code ? " (" + e.code + ")" : ""));
    err.status = res.status;
    throw err;
  }
  return body;
}

function bytes(n) {
  if (n === undefined || n === null) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? n + " B" : v.toFixed(1) + " " + units[u];
}

function remaining(expiresAt) {
  const ms = Date.parse(expiresAt) - Date.now();
  if (ms <= 0) return null;
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s";
  return (s % 60) + "s";
}

function show(view) {
  for (const id of ["sign-in", "leases", "billing", "cluster"]) $(id).hidden = id !== view;
  for (const b of $("tabs").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.view === view));
}

// Sign in: an API key becomes a session token at once; an admin key stays in memory.
async function signIn(ev) {
  ev.preventDefault();
  const key = $("key").value.trim();
  $("key").value = "";
  say("");
  try {
    if (key.startsWith("rs_admin_")) {
      auth.admin = key;
      await loadCluster();
      $("who").textContent = "Operator";
      show("cluster");
    } else {
      const s = await api("POST", "/api/auth/session", key);
      auth.token = s.token;
      sessionStorage.setItem("relay-session", s.token);
      await enterAgent();
    }
    $("sign-out").hidden = false;
  } catch (e) {
    auth.admin = null;
    say("Sign-in failed: " + e.message);
    $("key").focus();
  }
}

async function enterAgent() {
  const me = await api("GET", "/api/account");
  $("who").textContent = "Account " + me.account_id;
  $("tabs").hidden = false;
  show("leases");
  await loadLeases();
  $("leases-title").focus && $("leases-title").setAttribute("tabindex", "-1");
}

async function signOut() {
  if (auth.token) { try { await api("DELETE", "/api/auth/session"); } catch (_) { /* already gone */ } }
  auth.token = null; auth.admin = null;
  sessionStorage.removeItem("relay-session");
  $("who").textContent = ""; $("sign-out").hidden = true; $("tabs").hidden = true;
  show("sign-in");
  $("key").focus();
}

let leasesCursor = null;

// The first page (the list may have changed since), or with `more` the next one appended.
async function loadLeases(more) {
  const query = more && leasesCursor ? "&cursor=" + encodeURIComponent(leasesCursor) : "";
  const page = await api("GET", "/api/leases?limit=200" + query);
  leases = more ? leases.concat(page.leases) : page.leases;
  leasesCursor = page.next_cursor;
  $("more-leases").hidden = !leasesCursor;
  renderLeases();
}

function stateOf(l) {
  return l.status === "active" && remaining(l.expires_at) === null ? "expired" : l.status;
}

function renderLeases() {
  const body = $("lease-table").querySelector("tbody");
  body.textContent = "";
  for (const l of leases) {
    const state = stateOf(l);
    const actions = el("td", {});
    if (state === "active" && l.kind !== "baton") {
      const b = el("button", { type: "button", "aria-label": "Handoffs of " + l.lease_id }, "Handoffs");
      b.addEventListener("click", () => showHandoffs(l));
      actions.append(b, " ");
    }
    if (state === "active" && l.kind === "mailbox") {
      const b = el("button", { type: "button", "aria-label": "Messages of " + l.lease_id }, "Messages");
      b.addEventListener("click", () => showMessages(l));
      actions.append(b, " ");
    }
    const history = el("button", { type: "button", "aria-label": "Access history of " + l.lease_id }, "History");
    history.addEventListener("click", () => showHistory(l));
    actions.append(history);
    const left = remaining(l.expires_at);
    body.append(el("tr", { "data-lease": l.lease_id, "data-state": state },
      el("td", { class: "id" }, l.lease_id, el("br", {}), l.file_name || l.workflow_id || ""),
      el("td", {}, l.kind),
      el("td", { class: "state-" + state }, state),
      el("td", {}, bytes(l.size_bytes !== undefined ? l.size_bytes : l.capacity_bytes)),
      el("td", { "data-expires": l.expires_at, title: l.expires_at }, left === null ? "expired" : left),
      el("td", {}, l.access_count),
      actions));
  }
  if (!leases.length) body.append(el("tr", {}, el("td", { colspan: "7" }, "No leases yet.")));
}

// The countdown: each second; a lease that runs out turns expired here, then the ledger's
// answer replaces the list.
function tick() {
  let ran_out = false;
  for (const row of $("lease-table").querySelectorAll("tr[data-lease]")) {
    const cell = row.querySelector("td[data-expires]");
    const left = remaining(cell.dataset.expires);
    cell.textContent = left === null ? "expired" : left;
    if (left === null && row.dataset.state === "active") ran_out = true;
  }
  if (ran_out) loadLeases().catch((e) => say(e.message));
}

function detail(title, ...nodes) {
  $("detail").hidden = false;
  $("detail-title").textContent = title;
  $("detail-body").textContent = "";
  $("detail-body").append(...nodes);
}

function showHistory(l) {
  const items = (l.access_history || []).map((a) => el("li", {}, a.at + " — " + a.actor));
  detail("Access history of " + l.lease_id, items.length ? el("ul", {}, ...items) : el("p", {}, "No access yet."));
}

async function showHandoffs(l) {
  try {
    const h = await api("GET", "/api/handoffs/" + encodeURIComponent(l.lease_id));
    const rows = h.handoffs.map((t) => {
      const revoke = el("button", { type: "button", class: "danger", "aria-label": "Revoke " + t.handoff_id }, "Revoke");
      revoke.addEventListener("click", async () => {
        try {
          await api("DELETE", "/api/handoffs/" + encodeURIComponent(t.handoff_id));
          say("Revoked " + t.handoff_id);
          await showHandoffs(l);
        } catch (e) { say("Revoke failed: " + e.message); }
      });
      return el("tr", { "data-handoff": t.handoff_id },
        el("td", { class: "id" }, t.handoff_id), el("td", { class: "id" }, t.token_prefix + "…"),
        el("td", {}, t.claims_remaining + " of " + t.max_claims), el("td", {}, t.expires_at), el("td", {}, revoke));
    });
    const table = el("table", { id: "handoff-table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Handoff"), el("th", { scope: "col" }, "Token"),
        el("th", { scope: "col" }, "Claims left"), el("th", { scope: "col" }, "Expires"), el("th", { scope: "col" }, ""))),
      el("tbody", {}, ...rows));
    detail("Handoffs of " + l.lease_id, rows.length ? el("div", { class: "scroll" }, table) : el("p", { id: "no-handoffs" }, "No live handoff tokens."));
  } catch (e) { say(e.message); }
}

async function showMessages(l) {
  try {
    const m = await api("GET", "/api/mailbox/" + encodeURIComponent(l.lease_id) + "/messages");
    const rows = m.items.map((i) => el("tr", {}, el("td", { class: "id" }, i.id), el("td", {}, bytes(i.size_bytes)),
      el("td", {}, i.content_type), el("td", {}, i.received_at)));
    const table = el("table", { id: "message-table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Message"), el("th", { scope: "col" }, "Size"),
        el("th", { scope: "col" }, "Type"), el("th", { scope: "col" }, "Received"))),
      el("tbody", {}, ...rows));
    detail(m.count + " queued in " + l.lease_id + " (" + bytes(m.used_bytes) + " of " + bytes(m.capacity_bytes) + ")",
      el("div", { class: "scroll" }, table));
  } catch (e) { say(e.message); }
}

let billingCursor = null;

async function loadBilling(more) {
  const me = await api("GET", "/api/account");
  $("balance").textContent = "Balance: " + me.balance_usdc + " USDC";
  const query = more && billingCursor ? "&cursor=" + encodeURIComponent(billingCursor) : "";
  const page = await api("GET", "/api/billing?limit=200" + query);
  billingCursor = page.next_cursor;
  $("more-billing").hidden = !billingCursor;
  const body = $("billing-table").querySelector("tbody");
  if (!more) body.textContent = "";
  for (const i of page.items) {
    body.append(el("tr", {}, el("td", {}, i.created_at), el("td", { class: "id" }, i.lease_id),
      el("td", {}, i.amount_usdc), el("td", {}, i.balance_after_micros === null ? "-" : Number(i.balance_after_micros) / 1e6),
      el("td", {}, i.payment_method)));
  }
}

async function loadCluster() {
  const s = await api("GET", "/cluster/status");
  const dl = $("cluster-summary");
  dl.textContent = "";
  const facts = [["This node", s.node_id], ["Leader", s.leader_id === null ? "none" : s.leader_id], ["Term", s.term],
    ["Last applied", s.last_applied], ["Last log index", s.last_log_index], ["Last snapshot", s.snapshot_index === null ? "none" : s.snapshot_index],
    ["Version", s.version && s.version.binary]];
  for (const [k, v] of facts) dl.append(el("dt", {}, k), el("dd", {}, v === undefined ? "-" : v));
  const body = $("member-table").querySelector("tbody");
  body.textContent = "";
  for (const m of s.members) {
    const role = (m.id === s.leader_id ? "leader" : m.voter ? "voter" : "learner");
    const lag = m.lag_entries === null || m.lag_entries === undefined ? "-" : m.lag_entries + " entries";
    body.append(el("tr", { "data-member": m.id }, el("td", {}, m.id), el("td", {}, role), el("td", {}, m.region || "-"),
      el("td", {}, lag), el("td", {}, m.http_addr), el("td", {}, m.raft_addr)));
  }
}

function main() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", () => loadLeases().catch((e) => say(e.message)));
  $("more-leases").addEventListener("click", () => loadLeases(true).catch((e) => say(e.message)));
  $("more-billing").addEventListener("click", () => loadBilling(true).catch((e) => say(e.message)));
  for (const b of $("tabs").querySelectorAll("button")) {
    b.addEventListener("click", async () => {
      show(b.dataset.view);
      try { if (b.dataset.view === "billing") await loadBilling(); else await loadLeases(); } catch (e) { say(e.message); }
    });
  }
  clock = setInterval(tick, 1000);
  const saved = sessionStorage.getItem("relay-session");
  if (saved) {
    auth.token = saved;
    enterAgent().then(() => { $("sign-out").hidden = false; }).catch(() => { auth.token = null; sessionStorage.removeItem("relay-session"); show("sign-in"); });
  } else {
    show("sign-in");
  }
}

main();
