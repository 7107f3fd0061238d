// fastgate's live dashboard: polls GET /stats once a second and draws it.
// No framework; every text goes through textContent, never innerHTML.
"use strict";

const TOKEN_KEY = "fastgate-admin-token";
const POLL_MS = 1000;

// The token: from the URL fragment (#token=...), which is then removed
// from the address bar, or from sessionStorage.
function initToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function setText(id, s) { document.getElementById(id).textContent = s; }

// Formatting. A null is a figure with nothing behind it: a dash.
function fmtRate(v) {
  if (v === null || v === undefined) return "–";
  if (v === 0) return "0";
  if (v < 10) return v.toFixed(2);
  if (v < 1000) return v.toFixed(1);
  return Math.round(v).toLocaleString("en-US");
}
function fmtMs(v) {
  if (v === null || v === undefined) return "–";
  if (v >= 1000) return (v / 1000).toFixed(2) + " s";
  if (v >= 10) return v.toFixed(1) + " ms";
  if (v >= 1) return v.toFixed(2) + " ms";
  return v.toFixed(3) + " ms";
}
function fmtPct(v) {
  if (v === null || v === undefined) return "–";
  return (v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1) + "%";
}
function fmtCount(v) { return Math.round(v).toLocaleString("en-US"); }
function fmtDuration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s";
  return s + "s";
}

// spark draws values (nulls leave gaps) as an SVG polyline scaled to the
// largest value.
const SVG = "http://www.w3.org/2000/svg";
function spark(values, cls) {
  const w = 120, h = 22, n = 60;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark " + (cls || ""));
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const vs = (values || []).slice(-n);
  const max = Math.max(0, ...vs.filter(v => v !== null));
  const x0 = w - (vs.length - 1) * (w / (n - 1));
  let pts = [];
  const flush = () => {
    if (pts.length > 1) {
      const pl = document.createElementNS(SVG, "polyline");
      pl.setAttribute("points", pts.join(" "));
      svg.append(pl);
    }
    pts = [];
  };
  vs.forEach((v, i) => {
    if (v === null) { flush(); return; }
    const x = x0 + i * (w / (n - 1));
    const y = max > 0 ? h - 1 - (v / max) * (h - 2) : h - 1;
    pts.push(x.toFixed(1) + "," + y.toFixed(1));
  });
  flush();
  return svg;
}

function status(state, text) {
  const s = document.getElementById("status");
  s.dataset.state = state;
  s.textContent = text;
  document.getElementById("auth").hidden = state !== "auth";
  document.getElementById("main").hidden = state === "auth";
}

function renderTotals(st) {
  const g = st.gateway;
  setText("version", st.version ? "version " + st.version : "");
  setText("g-rate", fmtRate(g.requests_per_second));
  document.getElementById("g-spark").replaceChildren(spark(g.rate_history));
  setText("g-inflight", fmtCount(g.in_flight));
  setText("g-4xx", fmtPct(g.ratio_4xx));
  setText("g-5xx", fmtPct(g.ratio_5xx));
  setText("g-total", fmtCount(g.requests_total));
  setText("g-reloads", fmtCount(g.reloads_ok) + " / " + fmtCount(g.reloads_error));
  setText("g-uptime", fmtDuration(st.uptime_seconds));
  setText("window", st.window_seconds > 0 ? "(last " + Math.round(st.window_seconds) + " s)" : "(collecting…)");
}

function renderRoutes(st) {
  const rows = (st.routes || []).map(r => {
    const cell = (k, text, cls) => el("td", { "data-k": k, class: cls }, text);
    return el("tr", { "data-route": r.name },
      cell("name", r.name === "_unmatched" ? "(no route matched)" : r.name),
      cell("rate", fmtRate(r.requests_per_second), "num"),
      el("td", {}, spark(r.rate_history)),
      cell("p50", fmtMs(r.p50_ms), "num"),
      cell("p99", fmtMs(r.p99_ms), "num"),
      el("td", {}, spark(r.p99_ms_history, "p99")),
      cell("4xx", fmtPct(r.ratio_4xx), "num"),
      cell("5xx", fmtPct(r.ratio_5xx), r.ratio_5xx > 0 ? "num bad" : "num"),
      cell("inflight", fmtCount(r.in_flight), "num"),
      cell("limited", fmtRate(r.rate_limited_per_second), "num"),
      cell("cache", fmtPct(r.cache_hit_ratio), "num"),
      cell("total", fmtCount(r.requests_total), "num"));
  });
  document.querySelector("#routes tbody").replaceChildren(...rows);
}

function targetState(t, draining) {
  if (draining) return "draining";
  if (t.ejected) return "ejected";
  if (!t.healthy) return "unhealthy";
  return "healthy";
}

function renderUpstreams(st) {
  const blocks = (st.upstreams || []).map(u => {
    const head = el("h3", {},
      u.name,
      el("span", { class: "muted" }, u.balancer),
      el("span", { class: "muted" }, u.available + "/" + (u.targets || []).length + " available"),
      u.ejected ? el("span", { class: "badge ejected" }, u.ejected + " ejected") : null,
      u.panic ? el("span", { class: "badge panic", "data-k": "panic" }, "panic mode") : null,
      u.source ? el("span", { class: "muted", "data-k": "source" }, "source: " + u.source) : null,
      el("span", { class: "muted" }, "in flight " + fmtCount(u.in_flight)));
    const all = (u.targets || []).map(t => [t, false]).concat((u.draining || []).map(t => [t, true]));
    const rows = all.map(([t, draining]) => {
      const state = targetState(t, draining);
      return el("tr", { "data-target": t.addr },
        el("td", {}, t.addr),
        el("td", { "data-k": "state" }, el("span", { class: "badge " + state }, state)),
        el("td", { class: "num", "data-k": "rate" }, fmtRate(t.requests_per_second)),
        el("td", { class: "num", "data-k": "inflight" }, fmtCount(t.in_flight)),
        el("td", { class: "num" }, t.ewma_ms ? fmtMs(t.ewma_ms) : "–"),
        el("td", { class: "num" }, fmtCount(t.ejections)),
        el("td", { class: "num" }, t.weight));
    });
    const table = el("table", {},
      el("thead", {}, el("tr", {},
        el("th", {}, "target"), el("th", {}, "state"), el("th", { class: "num" }, "req/s"),
        el("th", { class: "num" }, "in flight"), el("th", { class: "num" }, "latency (EWMA)"),
        el("th", { class: "num" }, "ejections"), el("th", { class: "num" }, "weight"))),
      el("tbody", {}, ...rows));
    return el("div", { class: "upstream", "data-upstream": u.name }, head, table);
  });
  document.getElementById("upstreams").replaceChildren(...blocks);
}

// poll fetches and draws the stats, then schedules itself; a 401 stops
// it until a token is entered.
async function poll() {
  let again = true;
  try {
    const headers = {};
    if (token()) headers["Authorization"] = "Bearer " + token();
    const resp = await fetch("/stats", { headers, cache: "no-store" });
    if (resp.status === 401) {
      status("auth", "admin token required");
      again = false;
      return;
    }
    if (!resp.ok) {
      status("error", "GET /stats: HTTP " + resp.status);
      return;
    }
    const st = await resp.json();
    renderTotals(st);
    renderRoutes(st);
    renderUpstreams(st);
    status("live", "live · " + new Date(st.time).toLocaleTimeString());
  } catch (e) {
    status("error", "gateway unreachable");
  } finally {
    if (again) setTimeout(poll, POLL_MS);
  }
}

document.getElementById("auth").addEventListener("submit", ev => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  status("loading", "connecting…");
  poll();
});

initToken();
poll();
