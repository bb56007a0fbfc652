// Regolo dashboard: small progressive enhancements. No inline scripts (CSP), no
// third-party code; every value from the server is written with textContent.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

function setField(root, name, value) {
  const el = root.querySelector('[data-field="' + name + '"]');
  if (el) el.textContent = value;
}

function wireToggles() {
  document.querySelectorAll("[data-toggle]").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.toggle);
      target.hidden = !target.hidden;
      const input = target.querySelector("input:not([type=hidden])");
      if (!target.hidden && input) input.focus();
    });
  });
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      navigator.clipboard.writeText(text).then(() => { button.textContent = "Copied"; }, () => {});
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

function autoRefresh() {
  const seconds = Number(document.body.dataset.refreshSeconds || 0);
  if (seconds > 0) window.setTimeout(() => window.location.reload(), seconds * 1000);
}

// ---- health -----------------------------------------------------------------------

function pollHealth() {
  const card = document.getElementById("health");
  if (!card) return;
  const refresh = () => fetch(card.dataset.url, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((h) => {
      if (!h) return;
      setField(card, "status", h.status);
      setField(card, "ready_replicas", h.ready_replicas);
      setField(card, "total_replicas", h.total_replicas);
      setField(card, "last_check", h.last_check ? new Date(h.last_check).toLocaleTimeString() : "-");
      // Became ready since the page was rendered: reload once to show versions and
      // replicas, unless the playground holds a conversation.
      const transcript = document.getElementById("transcript");
      if (card.dataset.renderedStatus !== "ready" && h.endpoint_status === "ready" && transcript && !transcript.childElementCount) {
        card.dataset.renderedStatus = "ready";
        window.location.reload();
        return;
      }
      const status = document.getElementById("endpoint-status");
      if (status) { status.textContent = h.endpoint_status; status.className = "status status-" + h.endpoint_status; }
      const body = card.querySelector('[data-field="replicas"]');
      body.replaceChildren(...h.replicas.map((r) => row([r.id, r.version, r.state + (r.reason ? " (" + r.reason + ")" : ""),
        r.cpu_cores_used == null ? "-" : r.cpu_cores_used.toFixed(2),
        r.memory_bytes == null ? "-" : (r.memory_bytes / 1e6).toFixed(0) + " MB"])));
    })
    .catch(() => {});
  refresh();
  window.setInterval(refresh, 3000);
}

function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach((value) => { const td = document.createElement("td"); td.textContent = String(value); tr.appendChild(td); });
  return tr;
}

// ---- charts -----------------------------------------------------------------------

const CHARTS = {
  requests: [["request_count", "s1"]],
  latency: [["p50_latency_ms", "s1"], ["p95_latency_ms", "s2"], ["p99_latency_ms", "s3"]],
  errors: [["error_count", "s3"]],
  cpu: [["cpu_usage", "s2"]],
};

function svg(name, attrs) {
  const el = document.createElementNS(SVG, name);
  Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, String(v)));
  return el;
}

function drawChart(target, series, lines) {
  const W = 320, H = 140, L = 36, B = 18, T = 8;
  const values = lines.flatMap(([key]) => series.map((p) => p[key]).filter((v) => v != null));
  const max = Math.max(0, ...values) || 1;
  const x = (i) => L + (series.length < 2 ? 0 : (i * (W - L - 4)) / (series.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const nodes = [svg("line", { x1: L, y1: H - B, x2: W - 4, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" })];
  const top = svg("text", { x: L - 4, y: T + 8, class: "tick", "text-anchor": "end" });
  top.textContent = max >= 100 ? max.toFixed(0) : max.toPrecision(2);
  nodes.push(top);
  lines.forEach(([key, style]) => {
    const points = series.map((p, i) => (p[key] == null ? null : x(i) + "," + y(p[key]))).filter(Boolean);
    if (points.length) nodes.push(svg("polyline", { points: points.join(" "), class: "line " + style, "data-series": key }));
    // A lone point draws no line: mark every point so one busy minute still shows.
    series.forEach((p, i) => {
      if (p[key] != null && p[key] > 0) nodes.push(svg("circle", { cx: x(i), cy: y(p[key]), r: 2.5, class: "dot " + style }));
    });
  });
  if (!values.length) {
    const empty = svg("text", { x: W / 2, y: H / 2, class: "tick", "text-anchor": "middle" });
    empty.textContent = "no data yet";
    nodes.push(empty);
  }
  target.replaceChildren(...nodes);
  target.dataset.points = String(values.filter((v) => v > 0).length);
}

function loadMetrics() {
  const card = document.getElementById("metrics");
  if (!card) return;
  const select = document.getElementById("time-range");
  const refresh = () => fetch(card.dataset.url + "?time_range=" + encodeURIComponent(select.value), { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((m) => {
      if (!m) { setField(card, "summary", "Metrics are not available."); return; }
      setField(card, "summary", m.request_count + " requests · avg " + m.avg_latency_ms.toFixed(0) + " ms · p95 " +
        (m.p95_latency_ms == null ? "-" : m.p95_latency_ms.toFixed(0) + " ms") + " · errors " + (m.error_rate * 100).toFixed(1) +
        "% · availability " + (m.availability * 100).toFixed(2) + "%");
      card.querySelectorAll("svg[data-chart]").forEach((target) => drawChart(target, m.series, CHARTS[target.dataset.chart]));
    })
    .catch(() => {});
  select.addEventListener("change", refresh);
  refresh();
  window.setInterval(refresh, 5000);
}

// ---- chat playground ----------------------------------------------------------------

function bubble(transcript, role, text) {
  const div = document.createElement("div");
  div.className = "msg msg-" + role;
  const who = document.createElement("strong");
  who.textContent = role + ": ";
  const body = document.createElement("span");
  body.className = "content";
  body.textContent = text;
  div.append(who, body);
  transcript.appendChild(div);
  return body;
}

async function readStream(response, onDelta) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      event.split("\n").filter((l) => l.startsWith("data:")).forEach((line) => {
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "stream error");
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) onDelta(delta.content);
      });
    }
  }
}

function wirePlayground() {
  const card = document.getElementById("playground");
  if (!card) return;
  const form = document.getElementById("chat-form");
  const transcript = document.getElementById("transcript");
  const status = document.getElementById("chat-status");
  const history = [];
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = form.elements.message.value;
    if (!text.trim()) return;
    history.push({ role: "user", content: text });
    bubble(transcript, "user", text);
    form.elements.message.value = "";
    const answer = bubble(transcript, "assistant", "");
    status.textContent = "Streaming…";
    form.elements["chat-send"].disabled = true;
    try {
      const response = await fetch(card.dataset.url, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ messages: history, max_tokens: Number(form.elements.max_tokens.value) || 16 }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error((body.error && body.error.message) || "HTTP " + response.status);
      }
      await readStream(response, (delta) => { answer.textContent += delta; });
      history.push({ role: "assistant", content: answer.textContent });
      status.textContent = "Done.";
      card.dataset.done = String(Number(card.dataset.done || 0) + 1);
    } catch (error) {
      history.pop();
      status.textContent = "Error: " + error.message;
    } finally {
      form.elements["chat-send"].disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireToggles();
  autoRefresh();
  pollHealth();
  loadMetrics();
  wirePlayground();
});
