#include "server/web_page.hpp"

namespace edgelm::server {

// Kept as one literal so the binary needs no files at run time. Text from the model is only
// ever assigned with textContent, never parsed as HTML.
const std::string& chat_page_html() {
  static const std::string page = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgelm chat</title>
<style>
:root { --bg:#f5f6f8; --panel:#ffffff; --fg:#1c2230; --muted:#687080; --accent:#2557d6;
        --border:#dde1e8; --err-bg:#fde8e8; --err-fg:#a11b1b; }
@media (prefers-color-scheme: dark) {
  :root { --bg:#14171d; --panel:#1c2028; --fg:#e6e8ec; --muted:#9aa2b1; --accent:#4a7cf0;
          --border:#2c323d; --err-bg:#3b1c1c; --err-fg:#ffb4b4; }
}
* { box-sizing: border-box; }
html, body { height: 100%; }
body { margin: 0; display: flex; flex-direction: column; background: var(--bg); color: var(--fg);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif; }
header { display: flex; align-items: center; gap: 12px; padding: 10px 18px;
         background: var(--panel); border-bottom: 1px solid var(--border); }
header h1 { margin: 0; font-size: 17px; letter-spacing: .2px; }
#model { font-size: 13px; color: var(--muted); padding: 2px 8px; border: 1px solid var(--border);
         border-radius: 999px; }
#stats { margin-left: auto; font-size: 13px; color: var(--muted); font-variant-numeric: tabular-nums; }
#messages { flex: 1; overflow-y: auto; padding: 18px; display: flex; flex-direction: column; gap: 10px; }
#hint { margin: auto; color: var(--muted); text-align: center; }
.msg { max-width: min(75%, 760px); padding: 9px 13px; border-radius: 14px; white-space: pre-wrap;
       overflow-wrap: anywhere; }
.msg.user { align-self: flex-end; background: var(--accent); color: #fff; border-bottom-right-radius: 4px; }
.msg.assistant { align-self: flex-start; background: var(--panel); border: 1px solid var(--border);
                 border-bottom-left-radius: 4px; }
.msg.assistant.streaming::after { content: "\258D"; color: var(--muted); animation: blink 1s steps(1) infinite; }
.msg.error { align-self: center; background: var(--err-bg); color: var(--err-fg); font-size: 14px; }
.msg .note { display: block; margin-top: 4px; font-size: 12px; color: var(--muted); }
@keyframes blink { 50% { opacity: 0; } }
#keybar { display: flex; gap: 8px; align-items: center; padding: 8px 18px; background: var(--panel);
          border-top: 1px solid var(--border); font-size: 14px; }
#keybar[hidden] { display: none; }
form { display: flex; gap: 8px; padding: 12px 18px; background: var(--panel); border-top: 1px solid var(--border); }
textarea, input { font: inherit; color: var(--fg); background: var(--bg); border: 1px solid var(--border);
                  border-radius: 10px; padding: 8px 10px; }
textarea { flex: 1; resize: none; min-height: 44px; max-height: 200px; }
button { font: inherit; border: 0; border-radius: 10px; padding: 0 18px; cursor: pointer;
         background: var(--accent); color: #fff; }
button.secondary { background: transparent; color: var(--fg); border: 1px solid var(--border); padding: 4px 12px; }
#stop { background: #c23b3b; }
button[hidden] { display: none; }
.opt { display: flex; flex-direction: column; justify-content: center; font-size: 11px; color: var(--muted); }
.opt input { width: 76px; padding: 4px 6px; border-radius: 8px; }
</style>
</head>
<body data-busy="false">
<header>
  <h1>edgelm</h1>
  <span id="model" title="model">loading…</span>
  <span id="stats"></span>
  <button id="new" class="secondary" type="button" title="forget the conversation">New chat</button>
</header>
<main id="messages" aria-live="polite"><p id="hint">Ask something. The conversation stays in this page.</p></main>
<div id="keybar" hidden><label for="key">API key</label><input id="key" type="password" autocomplete="off" size="36"></div>
<form id="form">
  <textarea id="input" rows="2" placeholder="Message (Enter to send, Shift+Enter for a new line)" autofocus></textarea>
  <label class="opt" title="longest reply, in tokens">max<input id="max-tokens" type="number" min="1" max="100000" value="512"></label>
  <label class="opt" title="sampling temperature (0: always the most likely token; empty: the server's default)">temp<input id="temperature" type="number" min="0" max="2" step="0.1" placeholder="0.8"></label>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" hidden>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const conversation = [];   // {role, content} messages sent with every request
let controller = null;
let epoch = 0;             // bumped by "New chat": a reply still arriving then is dropped

function authHeaders() {
  const h = { "Content-Type": "application/json" };
  const key = $("key").value || sessionStorage.getItem("edgelm-key") || "";
  if (key) h.Authorization = "Bearer " + key;
  return h;
}
function askForKey() { $("keybar").hidden = false; $("key").focus(); }
$("key").addEventListener("change", () => { sessionStorage.setItem("edgelm-key", $("key").value); loadModel(); });

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: authHeaders() });
    if (r.status === 401) { $("model").textContent = "API key needed"; askForKey(); return; }
    const j = await r.json();
    $("model").textContent = j.data[0].id;
    document.title = j.data[0].id + " — edgelm chat";
  } catch (e) { $("model").textContent = "server unreachable"; }
}

function scrollDown() { const m = $("messages"); m.scrollTop = m.scrollHeight; }
function bubble(cls, text) {
  const hint = $("hint"); if (hint) hint.remove();
  const d = document.createElement("div");
  d.className = "msg " + cls;
  d.textContent = text;
  $("messages").appendChild(d);
  scrollDown();
  return d;
}
function setBusy(busy) {
  document.body.dataset.busy = busy ? "true" : "false";
  $("send").hidden = busy;
  $("stop").hidden = !busy;
}
function showRate(tokens, seconds, final) {
  const rate = seconds > 0 ? tokens / seconds : 0;
  $("stats").textContent = tokens + " tokens · " + rate.toFixed(1) + " tok/s" + (final ? "" : " …");
}

async function send(text) {
  const myEpoch = epoch;
  conversation.push({ role: "user", content: text });
  bubble("user", text);
  const out = bubble("assistant streaming", "");
  setBusy(true);
  controller = new AbortController();
  let reply = "", pieces = 0, tFirst = 0, usage = null, failed = false, stopped = false;
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: authHeaders(), signal: controller.signal,
      body: JSON.stringify({ messages: conversation, stream: true, stream_options: { include_usage: true },
                             max_tokens: parseInt($("max-tokens").value, 10) || undefined,
                             temperature: $("temperature").value === "" ? undefined : parseFloat($("temperature").value) }),
    });
    if (!r.ok) {
      let msg = "HTTP " + r.status;
      try { msg = (await r.json()).error.message; } catch (e) { /* not JSON */ }
      if (r.status === 401) askForKey();
      throw new Error(msg);
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const j = JSON.parse(data);
          if (j.error) throw new Error(j.error.message);
          if (j.usage) usage = j.usage;
          const c = j.choices && j.choices[0];
          if (c && c.delta && c.delta.content) {
            const now = performance.now();
            if (!tFirst) tFirst = now;
            reply += c.delta.content;
            pieces++;
            out.textContent = reply;
            scrollDown();
            if (pieces > 1) showRate(pieces - 1, (now - tFirst) / 1000, false);
          }
        }
      }
    }
  } catch (e) {
    if (e.name === "AbortError") stopped = true;
    else { failed = true; bubble("error", e.message); }
  }
  const tEnd = performance.now();
  out.classList.remove("streaming");
  controller = null;
  setBusy(false);
  if (myEpoch !== epoch) return;
  if (reply) {
    conversation.push({ role: "assistant", content: reply });
    const n = usage ? usage.completion_tokens : pieces;
    if (tFirst && n > 1) showRate(n - 1, (tEnd - tFirst) / 1000, true);
    if (stopped) { const s = document.createElement("span"); s.className = "note"; s.textContent = "(stopped)"; out.appendChild(s); }
  } else {
    out.remove();
    conversation.pop();   // nothing came back: the message was not answered, so it is not history
    if (stopped && !failed) bubble("error", "Stopped before the first token.");
  }
  $("input").focus();
}

$("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (controller) return;
  const text = $("input").value.trim();
  if (!text) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); $("form").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("new").addEventListener("click", () => {
  epoch++;
  if (controller) controller.abort();
  conversation.length = 0;
  $("messages").innerHTML = '<p id="hint">Ask something. The conversation stays in this page.</p>';
  $("stats").textContent = "";
});
loadModel();
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace edgelm::server
