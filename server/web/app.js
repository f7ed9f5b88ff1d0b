// kvgo's playground and KV inspector. No framework: the page talks to
// /v1/chat/completions (SSE), /v1/kv/recipes and /v1/kv/inspect.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const log = $("log"), prompt = $("prompt"), figures = $("figures"), grid = $("grid"), tip = $("tip");
  let messages = [], controller = null, modelID = "", last = null;

  $("api-key").value = sessionStorage.getItem("kvgo-key") || "";
  // A new key reloads what the previous one could not read.
  $("api-key").addEventListener("change", () => {
    sessionStorage.setItem("kvgo-key", $("api-key").value);
    init().then(refresh);
  });

  function headers(extra) {
    const h = Object.assign({ "Content-Type": "application/json" }, extra || {});
    const k = $("api-key").value.trim();
    if (k) h["Authorization"] = "Bearer " + k;
    return h;
  }
  function bytes(n) {
    if (n == null) return "–";
    const u = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  function add(cls, text) {
    const d = document.createElement("div");
    d.className = "msg " + cls;
    d.textContent = text;
    log.appendChild(d);
    log.scrollTop = log.scrollHeight;
    return d;
  }
  function recipe() {
    return $("recipe-custom").value.trim() || $("recipe").value;
  }

  async function init() {
    try {
      const m = await (await fetch("/v1/models", { headers: headers() })).json();
      modelID = m.data[0].id;
      $("model").textContent = modelID + " · context " + m.data[0].context_length + " tokens";
    } catch (e) { $("model").textContent = "server unreachable"; }
    const r = await fetch("/v1/kv/recipes", { headers: headers() });
    if (!r.ok) { $("methods").textContent = "Recipes: " + r.status + " (an API key may be needed)"; return; }
    const info = await r.json();
    const sel = $("recipe");
    sel.innerHTML = "";
    for (const s of info.suggested) {
      const o = document.createElement("option");
      o.value = s; o.textContent = s + (s === info.default ? " (default)" : "");
      sel.appendChild(o);
    }
    $("methods").textContent = "Methods this server allows: " + info.methods.map((m) => m.name + " (" + m.kind + ")").join(", ");
  }

  async function send(ev) {
    ev.preventDefault();
    const text = prompt.value.trim();
    if (!text || controller) return;
    prompt.value = "";
    add("user", text);
    messages.push({ role: "user", content: text });
    const out = add("assistant", "");
    out.setAttribute("aria-busy", "true");
    const body = { model: modelID, messages: [], stream: true, kv: recipe(),
      max_tokens: +$("max-tokens").value || 64, temperature: +$("temperature").value, top_p: +$("top-p").value };
    if ($("system").value.trim()) body.messages.push({ role: "system", content: $("system").value.trim() });
    body.messages.push(...messages);
    if ($("seed").value !== "") body.seed = +$("seed").value;
    controller = new AbortController();
    $("send").disabled = true; $("stop").disabled = false;
    const t0 = performance.now();
    let tFirst = 0, usage = null, kv = "", reply = "", failed = "";
    const poll = setInterval(refresh, 1000);
    try {
      const res = await fetch("/v1/chat/completions", { method: "POST", body: JSON.stringify(body),
        headers: headers({ "X-Kvgo-Inspect": "1" }), signal: controller.signal });
      if (!res.ok) {
        const e = await res.json().catch(() => ({}));
        throw new Error((e.error && e.error.message) || res.statusText);
      }
      const reader = res.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const c = JSON.parse(data);
          if (c.error) { failed = c.error.message; continue; }
          if (c.kv) kv = c.kv;
          if (c.usage) usage = c.usage;
          for (const ch of c.choices || []) {
            const d = ch.delta && ch.delta.content;
            if (d) {
              if (!tFirst) tFirst = performance.now();
              reply += d;
              out.textContent = reply;
              log.scrollTop = log.scrollHeight;
            }
          }
        }
      }
    } catch (e) {
      if (e.name !== "AbortError") failed = e.message;
    }
    clearInterval(poll);
    const tEnd = performance.now();
    out.removeAttribute("aria-busy");
    out.dataset.done = "1";
    if (failed) add("error", "Error: " + failed);
    messages.push({ role: "assistant", content: reply });
    controller = null;
    $("send").disabled = false; $("stop").disabled = true;
    last = { usage, kv, ttft: tFirst ? tFirst - t0 : null, gen: tFirst ? tEnd - tFirst : null };
    showFigures(null);
    await refresh();
    prompt.focus();
  }

  function showFigures(seq) {
    if (!last) return;
    const u = last.usage || {};
    const n = u.completion_tokens;
    const tps = n > 1 && last.gen > 0 ? ((n - 1) / (last.gen / 1000)).toFixed(1) : "–";
    const f = [
      ["Recipe", last.kv || recipe()],
      ["Prompt tokens", u.prompt_tokens != null ? u.prompt_tokens : "–"],
      ["Generated", n != null ? n : "–"],
      ["Tokens/s", tps],
      ["TTFT", last.ttft != null ? last.ttft.toFixed(0) + " ms" : "–"],
      ["Reused tokens", u.prompt_tokens_details ? u.prompt_tokens_details.cached_tokens : 0],
    ];
    if (seq) f.push(["KV bytes", bytes(seq.bytes) + " of " + bytes(seq.full_f16_bytes) + " f16 (" + (100 * seq.bytes / seq.full_f16_bytes).toFixed(0) + "%)"]);
    figures.innerHTML = "";
    for (const [k, v] of f) {
      const d = document.createElement("div");
      const b = document.createElement("b");
      b.textContent = k;
      d.appendChild(b);
      d.appendChild(document.createTextNode(String(v)));
      figures.appendChild(d);
    }
  }

  let snap = null, text = [];
  async function refresh() {
    let r;
    try { r = await fetch("/v1/kv/inspect", { headers: headers() }); } catch (e) { return; }
    if (!r.ok) { $("insp-summary").textContent = "inspector: " + r.status; return; }
    const j = await r.json();
    snap = j.sequence; text = j.text || [];
    render();
    if (!controller) showFigures(snap);
  }

  function keptAt(st, p) {
    for (const [a, b] of st.ranges) if (p >= a && p <= b) return true;
    return false;
  }
  function tailFrom(st) {
    // The tail holds the last tail_tokens kept positions.
    let n = st.tail_tokens;
    for (let i = st.ranges.length - 1; i >= 0; i--) {
      const [a, b] = st.ranges[i], len = b - a + 1;
      if (n <= len) return b - n + 1;
      n -= len;
    }
    return 0;
  }
  function pageOf(st, p) {
    for (const pg of st.pages) if (p >= pg.first && p <= pg.last) return pg;
    return null;
  }

  function readCount() {
    let r = 0, all = 0;
    for (const st of snap.streams) for (const pg of st.pages) if (pg.read != null) { all++; if (pg.read) r++; }
    return r + " of " + all;
  }
  function render() {
    grid.innerHTML = "";
    tip.textContent = "";
    if (!snap) { $("insp-summary").textContent = "No inspected sequence yet: send a message."; return; }
    const n = snap.positions;
    $("insp-summary").textContent = (snap.live ? "live · " : "") + snap.recipe + " · " + n + " positions · " +
      bytes(snap.bytes) + " of " + bytes(snap.full_f16_bytes) + " f16 · pages in " + snap.codec +
      (snap.selector ? " · pages read at the last step by " + snap.selector + ": " + readCount() : " · no selector: every page is read");
    const avail = Math.max(200, grid.clientWidth - 140);
    const cw = Math.max(1, Math.min(8, Math.floor(avail / Math.max(1, n))));
    for (const st of snap.streams) {
      const row = document.createElement("div");
      row.className = "srow";
      row.tabIndex = 0;
      row.dataset.layer = st.layer; row.dataset.head = st.kv_head;
      row.dataset.kept = st.kept; row.dataset.ranges = JSON.stringify(st.ranges);
      // A row is a slider over positions: screen readers announce the
      // position's description as its value.
      row.setAttribute("role", "slider");
      row.setAttribute("aria-valuemin", "0");
      row.setAttribute("aria-valuemax", String(n - 1));
      row.setAttribute("aria-label", "layer " + st.layer + ", KV head " + st.kv_head + ": " + st.kept + " of " + n +
        " positions kept, " + bytes(st.bytes) + ". Arrow keys read positions.");
      const lbl = document.createElement("span");
      lbl.className = "lbl"; lbl.textContent = "L" + st.layer + " H" + st.kv_head;
      lbl.setAttribute("aria-hidden", "true");
      const cv = document.createElement("canvas");
      cv.width = n * cw; cv.height = 14; cv.style.width = n * cw + "px";
      cv.setAttribute("aria-hidden", "true");
      const tail = tailFrom(st);
      const draw = (cur) => {
        const g = cv.getContext("2d");
        const css = getComputedStyle(document.documentElement);
        g.fillStyle = css.getPropertyValue("--evicted"); g.fillRect(0, 0, n * cw, 14);
        for (const [a, b] of st.ranges) {
          g.fillStyle = css.getPropertyValue("--kept");
          g.fillRect(a * cw, 0, (Math.min(b, tail - 1) - a + 1) * cw, 14);
          if (b >= tail) { g.fillStyle = css.getPropertyValue("--tail"); const s = Math.max(a, tail); g.fillRect(s * cw, 0, (b - s + 1) * cw, 14); }
        }
        g.fillStyle = "#0b2a55";
        for (const pg of st.pages) g.fillRect(pg.first * cw, 0, Math.max(1, cw >> 2), 4);
        g.fillStyle = "#d9480f";
        for (const pg of st.pages) if (pg.read) {
          for (const [a, b] of st.ranges) {
            const x0 = Math.max(a, pg.first), x1 = Math.min(b, pg.last);
            if (x0 <= x1) g.fillRect(x0 * cw, 10, (x1 - x0 + 1) * cw, 4);
          }
        }
        if (cur >= 0) { g.fillStyle = "#f0a500"; g.fillRect(cur * cw, 0, Math.max(2, cw), 14); }
      };
      draw(-1);
      const kept = document.createElement("span");
      kept.className = "kept"; kept.textContent = st.kept + "/" + n;
      kept.setAttribute("aria-hidden", "true");
      row.append(lbl, cv, kept);
      let cur = -1;
      const show = (p) => {
        p = Math.max(0, Math.min(n - 1, p)); cur = p; draw(p);
        const pg = pageOf(st, p);
        const state = !keptAt(st, p) ? "evicted" : p >= tail ? "kept, F16 tail" : !pg ? "kept" :
          "kept, page " + pg.first + "–" + pg.last + " (" + pg.tokens + " tokens, " + bytes(pg.bytes) + ", " + snap.codec + ")" +
          (pg.read == null ? "" : pg.read ? ", read at the last step" : ", not read at the last step");
        tip.textContent = "layer " + st.layer + " head " + st.kv_head + " · position " + p + " " +
          JSON.stringify(text[p] != null ? text[p] : "") + (p < snap.prompt_tokens ? " (prompt)" : " (reply)") + " · " + state;
        row.setAttribute("aria-valuenow", String(p));
        row.setAttribute("aria-valuetext", tip.textContent);
      };
      cv.addEventListener("mousemove", (e) => show(Math.floor(e.offsetX / cw)));
      cv.addEventListener("mouseleave", () => draw(-1));
      row.addEventListener("blur", () => draw(-1));
      row.addEventListener("keydown", (e) => {
        const step = { ArrowRight: 1, ArrowLeft: -1, PageDown: 32, PageUp: -32 }[e.key];
        if (step) { e.preventDefault(); show(cur < 0 ? 0 : cur + step); }
        else if (e.key === "Home") { e.preventDefault(); show(0); }
        else if (e.key === "End") { e.preventDefault(); show(n - 1); }
      });
      row.addEventListener("focus", () => { if (cur < 0) show(0); else show(cur); });
      grid.appendChild(row);
    }
  }

  $("send-form").addEventListener("submit", send);
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("send-form").requestSubmit(); }
  });
  $("stop").addEventListener("click", () => controller && controller.abort());
  $("clear").addEventListener("click", () => { messages = []; log.innerHTML = ""; figures.innerHTML = ""; prompt.focus(); });
  $("refresh").addEventListener("click", refresh);
  $("recipe").addEventListener("change", () => { $("recipe-custom").value = ""; });
  init().then(refresh);
})();
