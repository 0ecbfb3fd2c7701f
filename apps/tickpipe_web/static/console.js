// tickpipe live console: candles and volume over /ws, prices and stages from the REST API, read-only SQL.
"use strict";
(function () {
  const LC = window.LightweightCharts;
  const SECONDS = { "1s": 1, "1m": 60, "5m": 300, "1h": 3600 };
  const MAX_WHITESPACE = 500;
  const el = (id) => document.getElementById(id);
  const chartEl = el("chart");
  const params = new URLSearchParams(location.search);
  const state = { symbol: params.get("symbol") || "", interval: params.get("interval") || "1m",
                  ws: null, last: null, bars: 0, updates: 0, gaps: [] };
  if (SECONDS[state.interval]) el("interval").value = state.interval;

  const chart = LC.createChart(chartEl, {
    autoSize: true,
    layout: { background: { color: "#0f1419" }, textColor: "#d8dee4" },
    grid: { vertLines: { color: "#1c2128" }, horzLines: { color: "#1c2128" } },
    timeScale: { timeVisible: true, secondsVisible: true },
  });
  const candles = chart.addSeries(LC.CandlestickSeries, {
    upColor: "#26a69a", downColor: "#ef5350", borderVisible: false,
    wickUpColor: "#26a69a", wickDownColor: "#ef5350",
  });
  const volume = chart.addSeries(LC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "" });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });

  const fmtTime = (s) => new Date(s * 1000).toISOString().slice(11, 19);
  const volBar = (b) => ({ time: b.time, value: b.volume, color: b.close >= b.open ? "#26a69a80" : "#ef535080" });

  function showGaps() {
    const g = el("gap");
    if (!state.gaps.length) { g.hidden = true; return; }
    const [from, to] = state.gaps[state.gaps.length - 1];
    const n = Math.round((to - from) / SECONDS[state.interval]);
    g.textContent = `gap: ${n} empty ${state.interval} interval${n === 1 ? "" : "s"} ${fmtTime(from)}–${fmtTime(to)} UTC` +
      (state.gaps.length > 1 ? ` (${state.gaps.length} gaps in view)` : "");
    g.hidden = false;
  }

  function withWhitespace(bars) {
    // A missing interval stays empty: a whitespace point, never an invented candle.
    const step = SECONDS[state.interval];
    const out = [];
    for (const b of bars) {
      if (out.length) {
        let t = out[out.length - 1].time + step, n = 0;
        while (t < b.time && n++ < MAX_WHITESPACE) { out.push({ time: t }); t += step; }
      }
      out.push(b);
    }
    return out;
  }

  function snapshot(msg) {
    const data = withWhitespace(msg.bars);
    candles.setData(data);
    volume.setData(data.map((b) => (b.open === undefined ? { time: b.time } : volBar(b))));
    state.last = msg.bars.length ? msg.bars[msg.bars.length - 1].time : null;
    state.bars = msg.bars.length;
    state.gaps = msg.gaps.slice();
    chartEl.dataset.bars = String(state.bars);
    el("status").textContent = msg.history === "ok" ? `${msg.symbol} ${msg.interval}: live`
      : `${msg.symbol} ${msg.interval}: live; history ${msg.history}`;
    showGaps();
    chart.timeScale().scrollToRealTime();
  }

  function update(bar) {
    const step = SECONDS[state.interval];
    if (state.last !== null && bar.time > state.last + step) {
      state.gaps.push([state.last + step, bar.time]);
      let t = state.last + step, n = 0;
      while (t < bar.time && n++ < MAX_WHITESPACE) { candles.update({ time: t }); volume.update({ time: t }); t += step; }
      showGaps();
    }
    const older = state.last !== null && bar.time < state.last;
    const point = { time: bar.time, open: bar.open, high: bar.high, low: bar.low, close: bar.close };
    candles.update(point, older);
    volume.update(volBar(bar), older);
    if (state.last === null || bar.time > state.last) { state.last = bar.time; state.bars += 1; }
    state.updates += 1;
    chartEl.dataset.bars = String(state.bars);
    chartEl.dataset.updates = String(state.updates);
    chartEl.dataset.lastUpdateMs = String(Date.now());
    el("last-update").textContent = `last update ${new Date().toISOString().slice(11, 23)} UTC: ` +
      `${bar.symbol} ${fmtTime(bar.time)} O ${bar.open} H ${bar.high} L ${bar.low} C ${bar.close} V ${bar.volume}`;
  }

  function subscribe() {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN || !state.symbol) return;
    state.last = null; state.gaps = []; state.bars = 0;
    candles.setData([]); volume.setData([]);
    chartEl.dataset.bars = "0";
    showGaps();
    el("status").textContent = `${state.symbol} ${state.interval}: loading…`;
    state.ws.send(JSON.stringify({ op: "subscribe", symbols: [state.symbol], interval: state.interval }));
  }

  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    ws.onopen = () => { el("status").textContent = "connected"; subscribe(); };
    ws.onclose = () => { el("status").textContent = "disconnected; reconnecting…"; setTimeout(connect, 1000); };
    ws.onmessage = (event) => {
      const text = typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
      const msg = JSON.parse(text);
      if (msg.type === "snapshot" && msg.symbol === state.symbol && msg.interval === state.interval) snapshot(msg);
      else if (msg.type === "bars") {
        for (const bar of msg.bars) {
          if (bar.symbol === state.symbol && bar.interval === state.interval) update(bar);
        }
      } else if (msg.type === "error") el("status").textContent = `error: ${msg.error}`;
    };
  }

  const num = (v, digits) => (v === null || v === undefined ? "?" :
    Number(v).toLocaleString("en-US", { maximumFractionDigits: digits }));

  function fillBody(table, rows) {
    const body = table.tBodies[0];
    body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      for (const c of cells) {
        const td = document.createElement("td");
        if (c && typeof c === "object") { td.textContent = c.text; td.className = c.cls; } else td.textContent = c;
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  async function refreshPrices() {
    try {
      const { prices } = await (await fetch("/api/prices")).json();
      fillBody(el("prices"), prices.map((p) => [p.symbol, num(p.price, 4), new Date(p.time_ms).toISOString().slice(11, 19)]));
      const select = el("symbol");
      const known = new Set([...select.options].map((o) => o.value));
      for (const p of prices) {
        if (!known.has(p.symbol)) select.add(new Option(p.symbol, p.symbol));
      }
      if (state.symbol && !known.has(state.symbol) && !prices.some((p) => p.symbol === state.symbol)) {
        select.add(new Option(state.symbol, state.symbol));
      }
      if (!state.symbol && prices.length) { state.symbol = prices[0].symbol; subscribe(); }
      select.value = state.symbol;
    } catch (e) { /* the next poll tries again */ }
  }

  async function refreshStages() {
    try {
      const { stages } = await (await fetch("/api/stages")).json();
      fillBody(el("stages"), stages.map((s) => [
        s.stage, s.up ? "yes" : { text: "no", cls: "down" }, num(s.events_per_s, 0), num(s.total, 0),
        num(s.lag, 0), s.dlq === null ? "–" : num(s.dlq, 0),
        s.gaps === null ? "–" : `${num(s.gaps, 0)} (${num(s.gap_seconds, 1)} s)`,
      ]));
      el("stages").dataset.rows = String(stages.length);
    } catch (e) { /* the next poll tries again */ }
  }

  el("symbol").addEventListener("change", (e) => { state.symbol = e.target.value; subscribe(); });
  el("interval").addEventListener("change", (e) => { state.interval = e.target.value; subscribe(); });
  el("sql-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = el("sql-error"), table = el("sql-result");
    error.hidden = true;
    const response = await fetch("/api/query", { method: "POST", headers: { "Content-Type": "application/json" },
                                                 body: JSON.stringify({ sql: el("sql").value }) });
    const answer = await response.json();
    if (!response.ok) {
      error.textContent = answer.error; error.hidden = false; table.tHead.replaceChildren(); fillBody(table, []); return;
    }
    const head = document.createElement("tr");
    for (const c of answer.columns) { const th = document.createElement("th"); th.textContent = c; head.appendChild(th); }
    table.tHead.replaceChildren(head);
    fillBody(table, answer.rows.map((r) => r.map((v) => (v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v)))));
    if (answer.truncated) { error.textContent = "first rows only"; error.hidden = false; }
  });

  connect();
  refreshPrices(); refreshStages();
  setInterval(refreshPrices, 1000);
  setInterval(refreshStages, 1000);
})();
