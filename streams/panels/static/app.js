/* fleetpulse's built-in dashboard pages. Plain JavaScript, no build step.
 *
 * The worker describes its dashboards at /api/dashboards (the same panel
 * catalogue Grafana's dashboards are made from); each panel's data comes from
 * /api/panels/<name>?from=&to=&<variable>=<value>... as {columns, rows}.
 * Charts are drawn with uPlot (vendored, see VENDORED.md).
 *
 * State lives in the URL: ?range=1h&refresh=30s&var-model=a&var-model=b.
 * Every panel element carries data-panel=<name> and, once drawn,
 * data-state=ok|empty|error and data-points=<points drawn> (the browser test
 * reads them); data-state is removed while the panel reloads after a change
 * of range or filters, and data-generation says which change it drew.
 *
 * Data from the worker (model names, error messages, ...) is only ever set as
 * text, never parsed as HTML.
 */
(function () {
  "use strict";

  const RANGES = { "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000 };
  const REFRESHES = { off: 0, "5s": 5, "10s": 10, "30s": 30, "1m": 60 };
  const DEFAULT_RANGE = "15m";
  let defaultRefresh = "10s"; // or the worker's refresh_s, when it is one of REFRESHES
  const TOKEN_KEY = "fleetpulse.token";
  const MAX_IN_FLIGHT = 4; // panel requests at once: the worker runs them on a small pool
  const PALETTE = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0",
    "#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477"];
  const AXIS = "#8e8e9e";
  const GRID = "#2c3235";
  const FONT = "11px system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif";
  const STALE = {};

  const state = {
    dashboards: [],
    dashboard: null,
    range: DEFAULT_RANGE,
    refresh: defaultRefresh,
    selected: {}, // variable name -> [values]; absent or empty: all
    generation: 0,
    timer: 0,
    views: [],
    filters: [],
  };

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "data") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  }

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- formatting

  function trimNum(v) {
    const a = Math.abs(v);
    if (a === 0) return "0";
    let s;
    if (a >= 100) s = v.toFixed(0);
    else if (a >= 10) s = v.toFixed(1);
    else if (a >= 1) s = v.toFixed(2);
    else s = v.toPrecision(3);
    return String(parseFloat(s));
  }

  function scaled(v, base, prefixes, unit) {
    // prefixes: [[factor, prefix], ...] largest first
    const a = Math.abs(v);
    for (const [factor, prefix] of prefixes) {
      if (a >= factor) return trimNum(v / factor) + " " + prefix + unit;
    }
    return trimNum(v) + (unit ? " " + unit : "");
  }

  const SI_UP = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  const SI_DOWN = [[1, ""], [1e-3, "m"], [1e-6, "\u00b5"], [1e-9, "n"]];
  const IEC = [[2 ** 50, "Pi"], [2 ** 40, "Ti"], [2 ** 30, "Gi"], [2 ** 20, "Mi"], [2 ** 10, "Ki"]];

  function si(v, unit) {
    const a = Math.abs(v);
    if (a === 0 || a >= 1) return scaled(v, 1000, SI_UP, unit);
    return scaled(v, 1000, SI_DOWN, unit);
  }

  function short(v) {
    const a = Math.abs(v);
    if (a < 1000) return trimNum(v);
    for (const [factor, suffix] of [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]]) {
      if (a >= factor) return trimNum(v / factor) + suffix;
    }
    return trimNum(v);
  }

  function duration(s) {
    const a = Math.abs(s);
    if (a === 0) return "0 s";
    if (a < 1e-6) return trimNum(s * 1e9) + " ns";
    if (a < 1e-3) return trimNum(s * 1e6) + " \u00b5s";
    if (a < 1) return trimNum(s * 1e3) + " ms";
    if (a < 60) return trimNum(s) + " s";
    if (a < 3600) return trimNum(s / 60) + " min";
    if (a < 86400) return trimNum(s / 3600) + " h";
    if (a < 604800) return trimNum(s / 86400) + " d";
    return trimNum(s / 604800) + " w";
  }

  /** A number in one of Grafana's units (the ones the catalogue uses, and a few more). */
  function fmt(v, unit) {
    if (v === null || v === undefined) return "\u2014";
    if (typeof v !== "number") return String(v);
    if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
    unit = unit || "short";
    if (unit.startsWith("suffix:")) return trimNum(v) + unit.slice(7);
    if (unit.startsWith("prefix:")) return unit.slice(7) + trimNum(v);
    switch (unit) {
      case "none": return trimNum(v);
      case "percentunit": return trimNum(v * 100) + "%";
      case "percent": return trimNum(v) + "%";
      case "s": return duration(v);
      case "ms": return duration(v / 1e3);
      case "us": case "\u00b5s": return duration(v / 1e6);
      case "ns": return duration(v / 1e9);
      case "reqps": return short(v) + " req/s";
      case "ops": return short(v) + " ops/s";
      case "rps": return short(v) + " rd/s";
      case "wps": return short(v) + " wr/s";
      case "cps": return short(v) + " c/s";
      case "watt": return si(v, "W");
      case "kwatt": return si(v * 1e3, "W");
      case "celsius": return trimNum(v) + " \u00b0C";
      case "bytes": return v === 0 || Math.abs(v) >= 1024 ? scaled(v, 1024, IEC, "B") : trimNum(v) + " B";
      case "decbytes": return si(v, "B");
      case "bits": return si(v, "b");
      case "Bps": case "binBps": return fmt(v, "bytes") + "/s";
      case "bps": return si(v, "b/s");
      case "hertz": return si(v, "Hz");
      default: return short(v);
    }
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function fmtTime(unixSeconds) {
    if (typeof unixSeconds !== "number" || !Number.isFinite(unixSeconds)) return "\u2014";
    const d = new Date(unixSeconds * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtLe(le, unit) {
    const v = parseLe(le);
    return Number.isFinite(v) ? "\u2264 " + fmt(v, unit) : String(le);
  }

  function parseLe(le) {
    const text = String(le).trim().toLowerCase();
    if (text === "+inf" || text === "inf") return Infinity;
    const v = Number(text);
    return Number.isNaN(v) ? NaN : v;
  }

  function naturalCompare(a, b) {
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  // ---------------------------------------------------------------- URL state

  function readUrl() {
    const q = new URLSearchParams(location.search);
    state.range = Object.hasOwn(RANGES, q.get("range") || "") ? q.get("range") : DEFAULT_RANGE;
    state.refresh = Object.hasOwn(REFRESHES, q.get("refresh") || "") ? q.get("refresh") : defaultRefresh;
    state.selected = {};
    for (const key of new Set(q.keys())) {
      if (key.startsWith("var-")) {
        const values = q.getAll(key).filter((v) => v !== "");
        if (values.length) state.selected[key.slice(4)] = values;
      }
    }
  }

  function queryString() {
    const q = new URLSearchParams();
    if (state.range !== DEFAULT_RANGE) q.set("range", state.range);
    if (state.refresh !== defaultRefresh) q.set("refresh", state.refresh);
    for (const [name, values] of Object.entries(state.selected)) {
      for (const v of values) q.append("var-" + name, v);
    }
    const s = q.toString();
    return s ? "?" + s : "";
  }

  function writeUrl() {
    const qs = queryString();
    if (qs !== location.search) history.replaceState(null, "", location.pathname + qs);
    for (const tab of document.querySelectorAll("#tabs a")) tab.href = tab.dataset.path + qs;
  }

  function dashboardPathName() {
    const m = location.pathname.match(/^\/d\/([^/]+)\/?$/);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return m[1]; }
  }

  function timeRange() {
    const to = Math.floor(Date.now() / 1000);
    return { from: to - RANGES[state.range], to };
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function storedToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  // After a 401, guarded requests wait for the token form rather than each
  // meeting the same refusal.
  let awaitingToken = false;

  async function getJson(path, guarded = true) {
    if (guarded && awaitingToken) throw new ApiError(401, "this worker needs its token");
    const headers = { Accept: "application/json" };
    const token = storedToken();
    if (token) headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch(path, { headers, credentials: "same-origin", cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "the worker did not answer (" + (e && e.message ? e.message : e) + ")");
    }
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.status === 401) {
      askForToken(token);
      throw new ApiError(401, "this worker needs its token");
    }
    if (!response.ok) {
      const reason = body && typeof body.error === "string" ? body.error : "HTTP " + response.status;
      throw new ApiError(response.status, reason);
    }
    if (body === null || typeof body !== "object") throw new ApiError(response.status, "the answer is not JSON");
    return body;
  }

  // At most MAX_IN_FLIGHT panel requests at once; a queued request whose
  // generation has passed is dropped before it is sent (never aborted mid-flight).
  const queue = [];
  let inFlight = 0;

  function limited(task) {
    return new Promise((resolve, reject) => { queue.push({ task, resolve, reject }); pump(); });
  }

  function pump() {
    while (inFlight < MAX_IN_FLIGHT && queue.length) {
      const { task, resolve, reject } = queue.shift();
      inFlight++;
      Promise.resolve().then(task).then(resolve, reject).finally(() => { inFlight--; pump(); });
    }
  }

  // ---------------------------------------------------------------- the token

  /** A 401 came back for a request sent with ``sentToken`` ("" for none). */
  function askForToken(sentToken) {
    const form = $("token-form");
    if (sentToken && sentToken === storedToken()) {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage disabled */ }
    } else if (awaitingToken || (!sentToken && storedToken())) {
      return; // already asking, or a request from before the token was entered
    }
    awaitingToken = true;
    $("token-message").textContent = sentToken
      ? "The worker refused that token. Enter FLEETPULSE_HTTP_TOKEN again:"
      : "This worker needs its token (FLEETPULSE_HTTP_TOKEN):";
    if (form.hidden) {
      form.hidden = false;
      $("token-input").focus();
    }
  }

  function onTokenSubmit(event) {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (e) { /* storage disabled: asked again next time */ }
    $("token-input").value = "";
    $("token-form").hidden = true;
    awaitingToken = false;
    loadVariables();
    refreshAll(true);
  }

  // ---------------------------------------------------------------- header

  function buildTabs() {
    const nav = $("tabs");
    nav.textContent = "";
    for (const dash of state.dashboards) {
      const path = "/d/" + encodeURIComponent(dash.name);
      const tab = el("a", { className: "tab", href: path, title: dash.description || null, text: dash.title || dash.name,
        data: { path, dashboard: dash.name } });
      if (state.dashboard && dash.name === state.dashboard.name) tab.setAttribute("aria-current", "page");
      nav.append(tab);
    }
  }

  function buildFilters() {
    const box = $("filters");
    box.textContent = "";
    state.filters = (state.dashboard.variables || []).map((variable) => {
      const button = el("button", { type: "button", className: "filter-button", "aria-haspopup": "true",
        "aria-expanded": "false" });
      const value = el("span", { className: "filter-value" });
      button.append(el("span", { className: "filter-label", text: variable.label || variable.name }), value);
      const menu = el("div", { className: "filter-menu" });
      menu.hidden = true;
      const root = el("div", { className: "filter", data: { variable: variable.name } }, button, menu);
      const filter = { variable, root, button, value, menu, values: [], error: "", loading: false };
      button.addEventListener("click", () => (menu.hidden ? openFilter(filter) : closeFilter(filter)));
      menu.addEventListener("change", (event) => onFilterChange(filter, event.target));
      box.append(root);
      renderFilter(filter);
      return filter;
    });
  }

  function selectedOf(name) { return state.selected[name] || []; }

  function renderFilter(filter) {
    const name = filter.variable.name;
    const selected = selectedOf(name);
    filter.value.textContent = selected.length === 0 ? "All"
      : selected.length === 1 ? selected[0] : `${selected[0]} +${selected.length - 1}`;
    filter.button.title = selected.length ? selected.join(", ") : "All";
    const menu = filter.menu;
    menu.textContent = "";
    const option = (value, text, checked, extraClass) => {
      const input = el("input", { type: "checkbox", value });
      input.checked = checked;
      return el("label", { className: "filter-option" + (extraClass ? " " + extraClass : "") }, input,
        el("span", { text }));
    };
    const all = option("", "All", selected.length === 0, "all");
    all.querySelector("input").dataset.all = "1";
    menu.append(all);
    const chosen = new Set(selected);
    const values = [...filter.values, ...selected.filter((v) => !filter.values.includes(v))];
    for (const v of values) menu.append(option(v, v, chosen.has(v)));
    if (filter.error) menu.append(el("div", { className: "filter-note error", text: filter.error }));
    else if (filter.loading && !values.length) menu.append(el("div", { className: "filter-note", text: "loading\u2026" }));
    else if (!values.length) menu.append(el("div", { className: "filter-note", text: "no values in this range" }));
  }

  function openFilter(filter) {
    for (const other of state.filters) if (other !== filter) closeFilter(other);
    filter.menu.hidden = false;
    filter.button.setAttribute("aria-expanded", "true");
    loadVariable(filter);
  }

  function closeFilter(filter) {
    filter.menu.hidden = true;
    filter.button.setAttribute("aria-expanded", "false");
  }

  function onFilterChange(filter, input) {
    if (!(input instanceof HTMLInputElement)) return;
    const name = filter.variable.name;
    if (input.dataset.all) {
      delete state.selected[name];
    } else {
      const chosen = new Set(selectedOf(name));
      if (input.checked) chosen.add(input.value); else chosen.delete(input.value);
      const order = [...filter.values, ...selectedOf(name)];
      const values = [...new Set(order.filter((v) => chosen.has(v)))];
      if (values.length) state.selected[name] = values; else delete state.selected[name];
    }
    renderFilter(filter);
    writeUrl();
    refreshAll(true);
  }

  async function loadVariable(filter) {
    const { from, to } = timeRange();
    const before = JSON.stringify([filter.values, filter.error]);
    filter.loading = true;
    try {
      const answer = await getJson(`/api/variables/${encodeURIComponent(filter.variable.name)}?from=${from}&to=${to}`);
      filter.values = (Array.isArray(answer.values) ? answer.values : []).map(String).sort(naturalCompare);
      filter.error = "";
    } catch (e) {
      filter.error = e.message;
    } finally {
      filter.loading = false;
    }
    // Re-drawn only when something changed: not under the pointer of someone choosing.
    if (JSON.stringify([filter.values, filter.error]) !== before) renderFilter(filter);
  }

  function loadVariables() {
    for (const filter of state.filters) loadVariable(filter);
  }

  // ---------------------------------------------------------------- panels

  function buildGrid() {
    const grid = $("grid");
    grid.textContent = "";
    for (const view of state.views) destroyChart(view);
    state.views = (state.dashboard.panels || []).map((panel) => {
      const message = el("div", { className: "panel-message" });
      const body = el("div", { className: "panel-body" });
      const readout = el("span", { className: "panel-readout" });
      const head = el("div", { className: "panel-head" }, el("h2", { text: panel.title || panel.name }));
      if (panel.description) head.append(el("span", { className: "panel-info", title: panel.description, text: "i" }));
      head.append(readout);
      const section = el("section", { className: `panel kind-${panel.kind}`, data: { panel: panel.name, kind: panel.kind } },
        head, body);
      const width = Math.min(24, Math.max(1, Math.round(Number(panel.width) || 12)));
      section.style.gridColumn = `span ${width}`;
      grid.append(section);
      const view = { panel, section, body, message, readout, chart: null, chartKey: "", inFlight: 0, pending: null,
        range: null, table: null };
      resizer.observe(body);
      bodies.set(body, view);
      return view;
    });
  }

  function pageMessage(text, isError) {
    const grid = $("grid");
    grid.textContent = "";
    grid.append(el("div", { className: "page-message" + (isError ? " error" : ""), text }));
  }

  function panelUrl(panel, from, to) {
    const q = new URLSearchParams({ from: String(from), to: String(to) });
    for (const variable of state.dashboard.variables || []) {
      for (const v of selectedOf(variable.name)) q.append(variable.name, v);
    }
    return `/api/panels/${encodeURIComponent(panel.name)}?${q}`;
  }

  /** Reload every panel. changed: the range or the filters changed (a new generation:
   * panels lose data-state until they draw it); else a refresh tick, which skips a
   * panel whose previous request is still out. */
  function refreshAll(changed) {
    if (!state.dashboard) return;
    if (changed) {
      state.generation++;
      document.body.dataset.generation = String(state.generation);
      for (const view of state.views) {
        view.section.removeAttribute("data-state");
        view.section.classList.add("loading");
      }
    }
    const { from, to } = timeRange();
    for (const view of state.views) {
      if (!changed && view.inFlight > 0) continue;
      loadPanel(view, state.generation, from, to);
    }
  }

  async function loadPanel(view, generation, from, to) {
    view.inFlight++;
    try {
      const answer = await limited(() => (generation === state.generation ? getJson(panelUrl(view.panel, from, to)) : STALE));
      if (answer === STALE || generation !== state.generation) return;
      draw(view, answer, from, to);
    } catch (e) {
      if (generation !== state.generation) return;
      showMessage(view, e.message, "error");
    } finally {
      view.inFlight--;
    }
  }

  function setState(view, dataState, points) {
    view.section.dataset.state = dataState;
    view.section.dataset.points = String(points);
    view.section.dataset.generation = String(state.generation);
    view.section.classList.remove("loading");
  }

  function showMessage(view, text, dataState) {
    destroyChart(view);
    view.body.textContent = "";
    view.readout.textContent = "";
    view.message.textContent = text;
    view.message.className = "panel-message" + (dataState === "error" ? " error" : "");
    view.body.append(view.message);
    setState(view, dataState, 0);
  }

  function destroyChart(view) {
    if (view.chart) {
      view.chart.destroy();
      view.chart = null;
      view.chartKey = "";
    }
    view.table = null;
  }

  function draw(view, answer, from, to) {
    const columns = Array.isArray(answer.columns) ? answer.columns.map(String) : [];
    const rows = Array.isArray(answer.rows) ? answer.rows.filter(Array.isArray) : [];
    const unit = answer.unit || view.panel.unit || "short";
    view.range = [from, to];
    if (!rows.length) return showMessage(view, "No data", "empty");
    try {
      switch (view.panel.kind) {
        case "timeseries": return drawTimeseries(view, columns, rows, unit);
        case "heatmap": return drawHeatmap(view, columns, rows, unit, Number(answer.interval_s) || 0);
        case "stat": return drawStat(view, columns, rows, unit);
        case "table": return drawTable(view, columns, rows, unit);
        default: return showMessage(view, `unknown panel kind: ${view.panel.kind}`, "error");
      }
    } catch (e) {
      return showMessage(view, "cannot draw this answer: " + e.message, "error");
    }
  }

  // ---------------------------------------------------------------- charts (uPlot)

  function isNumber(v) { return typeof v === "number" && Number.isFinite(v); }

  /** Long form (time, labels..., values...) to uPlot's aligned columns. String
   * columns are labels: one series per distinct label set and value column. */
  function toSeries(columns, rows) {
    const labels = [];
    const values = [];
    for (let c = 1; c < columns.length; c++) {
      (rows.some((r) => typeof r[c] === "string") ? labels : values).push(c);
    }
    const times = [...new Set(rows.map((r) => r[0]).filter(isNumber))].sort((a, b) => a - b);
    const at = new Map(times.map((t, i) => [t, i]));
    const series = new Map();
    for (const row of rows) {
      const i = at.get(row[0]);
      if (i === undefined) continue;
      const label = labels.map((c) => (row[c] === null || row[c] === undefined ? "" : String(row[c]))).join(" / ");
      for (const c of values) {
        const name = values.length > 1 ? (label ? label + " " + columns[c] : columns[c]) : (label || columns[c]);
        let ys = series.get(name);
        if (!ys) {
          ys = new Array(times.length).fill(undefined); // undefined: no row here (joined); null: a gap
          series.set(name, ys);
        }
        const v = row[c];
        ys[i] = v === null || v === undefined ? null : Number(v);
      }
    }
    const names = [...series.keys()].sort(naturalCompare);
    return { times, names, ys: names.map((n) => series.get(n)) };
  }

  /** A value axis as wide as its longest label. uPlot recomputes the axes up to
   * three times per draw (the labels change with the plot's size); a later
   * pass never shrinks the axis, so it settles and no label is cut. */
  function axisSize(u, values, axisIdx, cycleNum) {
    const axis = u.axes[axisIdx];
    let size = (axis.ticks && axis.ticks.show !== false ? axis.ticks.size : 0) + axis.gap + 4;
    let longest = 0;
    u.ctx.font = axis.font[0];
    for (const v of values || []) longest = Math.max(longest, u.ctx.measureText(String(v)).width / devicePixelRatio);
    size = Math.ceil(size + longest);
    return cycleNum > 1 && axis._size ? Math.max(axis._size, size) : size;
  }

  function chartSize(view) {
    const width = Math.max(100, view.body.clientWidth - 12);
    const legend = view.chart && view.chart.root.querySelector(".u-legend");
    const legendHeight = legend ? legend.offsetHeight : 0;
    return { width, height: Math.max(60, view.body.clientHeight - 6 - legendHeight) };
  }

  // uPlot's time-axis labels in 24-hour local time: [tick step, label, then the
  // label's second line where the year / day / ... rolls over], as its defaults.
  const _ = null;
  const TIME_LABELS = [
    [86400 * 365, "{YYYY}", _, _, _, _, _, _, 1],
    [86400 * 28, "{MMM}", "\n{YYYY}", _, _, _, _, _, 1],
    [86400, "{MM}-{DD}", "\n{YYYY}", _, _, _, _, _, 1],
    [3600, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", _, "\n{MM}-{DD}", _, _, _, 1],
    [60, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", _, "\n{MM}-{DD}", _, _, _, 1],
    [1, "{HH}:{mm}:{ss}", "\n{YYYY}-{MM}-{DD}", _, "\n{MM}-{DD}", _, _, _, 1],
  ];

  const valueAxis = () => ({ stroke: AXIS, font: FONT, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1 } });
  const timeAxis = () => ({ ...valueAxis(), values: TIME_LABELS, space: 70 }); // "06:17:30" needs ~50 px

  /** Create (or reuse, when the series are the same) a uPlot chart; data-state
   * and data-points are set by its draw hook, after it has drawn. */
  function plot(view, key, makeOptions, data, result) {
    view.pending = result;
    view.readout.textContent = "";
    if (view.chart && view.chartKey === key) {
      view.chart.setData(data);
      return;
    }
    destroyChart(view);
    view.body.textContent = "";
    const options = makeOptions();
    const size = chartSize(view);
    options.width = size.width;
    options.height = size.height;
    options.hooks = options.hooks || {};
    options.hooks.draw = [...(options.hooks.draw || []), () => {
      if (view.pending) {
        setState(view, view.pending.state, view.pending.points);
        view.pending = null;
      }
    }];
    view.chart = new uPlot(options, data, view.body);
    view.chartKey = key;
    const fitted = chartSize(view); // now that the legend has its height
    if (fitted.height !== size.height) view.chart.setSize(fitted);
  }

  function drawTimeseries(view, columns, rows, unit) {
    const { times, names, ys } = toSeries(columns, rows);
    let points = 0;
    for (const y of ys) for (const v of y) if (isNumber(v)) points++;
    if (!points) return showMessage(view, "No data", "empty");
    const key = "timeseries\u0000" + unit + "\u0000" + names.join("\u0000");
    plot(view, key, () => ({
      scales: { x: { time: true, range: () => view.range }, y: { range: valueRange } },
      series: [
        { value: (u, v) => fmtTime(v) },
        ...names.map((name, i) => ({
          label: name,
          stroke: PALETTE[i % PALETTE.length],
          width: 1,
          spanGaps: false,
          points: { size: 4 },
          value: (u, v) => fmt(v, unit),
        })),
      ],
      axes: [
        timeAxis(),
        { ...valueAxis(), values: (u, splits) => splits.map((v) => fmt(v, unit)), size: axisSize },
      ],
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
      hooks: { setCursor: [(u) => nearestReadout(view, u, unit)] },
    }), [times, ...ys], { state: "ok", points });
  }

  /** uPlot's default y range, except that all zeros (no retries, no late
   * events) is drawn on 0..1, not 0..100. */
  function valueRange(u, min, max) {
    if (min === null || min === undefined) return [null, null];
    if (min === 0 && max === 0) return [0, 1];
    return uPlot.rangeNum(min, max, 0.1, true);
  }

  /** The header's readout under the cursor: the time, and the shown series
   * closest to the pointer with its value. */
  function nearestReadout(view, u, unit) {
    const { idx, top } = u.cursor;
    if (idx === null || idx === undefined || top === null || top === undefined || top < 0) {
      view.readout.textContent = "";
      return;
    }
    let best = null;
    let bestDistance = Infinity;
    for (let i = 1; i < u.series.length; i++) {
      const v = u.data[i][idx];
      if (!u.series[i].show || !isNumber(v)) continue;
      const distance = Math.abs(u.valToPos(v, u.series[i].scale) - top);
      if (distance < bestDistance) { best = i; bestDistance = distance; }
    }
    view.readout.textContent = fmtTime(u.data[0][idx]) +
      (best === null ? "" : ` \u00b7 ${u.series[best].label}: ${fmt(u.data[best][idx], unit)}`);
  }

  function heatColor(t) {
    // dark blue -> orange -> pale yellow
    const stops = [[30, 42, 80], [200, 90, 40], [245, 166, 35], [255, 240, 170]];
    const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(x));
    const f = x - i;
    const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  /** Rows of (time, le, count): one cell per time and bucket, bucket i from
   * row i to i + 1 of the y scale, coloured by count (log scale). */
  function drawHeatmap(view, columns, rows, unit, intervalS) {
    let le = columns.indexOf("le");
    if (le < 1) le = columns.findIndex((c, i) => i > 0 && rows.some((r) => typeof r[i] === "string"));
    let count = columns.indexOf("count");
    if (count < 1) count = columns.findIndex((c, i) => i > 0 && i !== le && rows.some((r) => isNumber(r[i])));
    if (le < 1 || count < 1) return showMessage(view, "a heatmap needs columns time, le and count", "error");
    const buckets = [...new Set(rows.map((r) => String(r[le])))]
      .sort((a, b) => (parseLe(a) - parseLe(b)) || naturalCompare(a, b));
    const bucketAt = new Map(buckets.map((b, i) => [b, i]));
    const times = [...new Set(rows.map((r) => r[0]).filter(isNumber))].sort((a, b) => a - b);
    const timeAt = new Map(times.map((t, i) => [t, i]));
    let step = intervalS;
    if (!(step > 0)) {
      step = Infinity;
      for (let i = 1; i < times.length; i++) step = Math.min(step, times[i] - times[i - 1]);
      if (!Number.isFinite(step)) step = 10;
    }
    const counts = new Map(); // time index * buckets + bucket index -> count (summed over other labels)
    for (const row of rows) {
      const t = timeAt.get(row[0]);
      const v = row[count];
      if (t === undefined || !isNumber(v)) continue;
      const k = t * buckets.length + bucketAt.get(String(row[le]));
      counts.set(k, (counts.get(k) || 0) + v);
    }
    let max = 0;
    let points = 0;
    for (const v of counts.values()) {
      if (v > 0) { points++; max = Math.max(max, v); }
    }
    if (!points) return showMessage(view, "No data", "empty");
    const cells = { times, buckets, counts, step, max };
    const key = "heatmap\u0000" + unit + "\u0000" + buckets.join("\u0000");
    const drawCells = (u) => {
      const c = view.cells;
      if (!c) return;
      const { ctx, bbox } = u;
      const n = c.buckets.length;
      ctx.save();
      ctx.beginPath();
      ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
      ctx.clip();
      const logMax = Math.log1p(c.max);
      for (const [k, v] of c.counts) {
        if (!(v > 0)) continue;
        const t = c.times[Math.floor(k / n)];
        const b = k % n;
        const x0 = u.valToPos(t, "x", true);
        const x1 = u.valToPos(t + c.step, "x", true);
        const y0 = u.valToPos(b + 1, "y", true);
        const y1 = u.valToPos(b, "y", true);
        ctx.fillStyle = heatColor(Math.log1p(v) / logMax);
        ctx.fillRect(x0, y0, Math.max(1, x1 - x0 - 1), Math.max(1, y1 - y0 - 1));
      }
      ctx.restore();
    };
    const readout = (u) => {
      const c = view.cells;
      const { left, top } = u.cursor;
      if (!c || left === undefined || left === null || left < 0) { view.readout.textContent = ""; return; }
      const t = u.posToVal(left, "x");
      const b = Math.floor(u.posToVal(top, "y"));
      let lo = 0;
      let hi = c.times.length - 1;
      let i = -1;
      while (lo <= hi) { // the last time <= t
        const mid = (lo + hi) >> 1;
        if (c.times[mid] <= t) { i = mid; lo = mid + 1; } else hi = mid - 1;
      }
      if (i < 0 || t >= c.times[i] + c.step || b < 0 || b >= c.buckets.length) { view.readout.textContent = ""; return; }
      const v = c.counts.get(i * c.buckets.length + b) || 0;
      view.readout.textContent = `${fmtTime(c.times[i])} \u00b7 ${fmtLe(c.buckets[b], unit)}: ${fmt(v, "short")}`;
    };
    view.cells = cells;
    plot(view, key, () => ({
      scales: {
        x: { time: true, range: () => view.range },
        y: { auto: false, range: () => [0, view.cells ? view.cells.buckets.length : 1] },
      },
      series: [{}, { label: "count", scale: "y", paths: () => null, points: { show: false } }],
      axes: [
        timeAxis(),
        {
          ...valueAxis(),
          grid: { show: false },
          splits: (u) => {
            const n = view.cells ? view.cells.buckets.length : 0;
            const fit = Math.max(1, Math.floor(u.bbox.height / devicePixelRatio / 16));
            const every = Math.max(1, Math.ceil(n / fit));
            const out = [];
            for (let i = 0; i < n; i += every) out.push(i + 0.5);
            return out;
          },
          values: (u, splits) => splits.map((v) => {
            const b = view.cells && view.cells.buckets[Math.floor(v)];
            return b === undefined ? "" : fmtLe(b, unit);
          }),
          size: axisSize,
        },
      ],
      legend: { show: false },
      cursor: { drag: { x: false, y: false, setScale: false }, points: { show: false } },
      hooks: { draw: [drawCells], setCursor: [readout] },
    }), [times, times.map(() => null)], { state: "ok", points });
  }

  // ---------------------------------------------------------------- stat and table

  function drawStat(view, columns, rows, unit) {
    destroyChart(view);
    const row = rows[0];
    const tiles = el("div", { className: "stat-tiles" + (columns.length > 2 ? " many" : "") });
    let points = 0;
    columns.forEach((column, i) => {
      const v = row[i];
      if (v !== null && v !== undefined && !(typeof v === "number" && Number.isNaN(v))) points++;
      const text = typeof v === "number" ? fmt(v, unit) : v === null || v === undefined ? "\u2014" : String(v);
      tiles.append(el("div", { className: "stat", title: column },
        el("div", { className: "stat-value", text }),
        el("div", { className: "stat-label", text: column.replace(/_/g, " ") })));
    });
    if (!points) return showMessage(view, "No data", "empty");
    view.body.textContent = "";
    view.readout.textContent = "";
    view.body.append(tiles);
    setState(view, "ok", points);
  }

  const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/;
  const TIME_COLUMN = /(^|_)(time|at|start|end|since|until|window|timestamp)$/;

  function isTimeColumn(name, rows, i) {
    return TIME_COLUMN.test(name) && rows.every((r) => r[i] === null || (isNumber(r[i]) && r[i] > 1e9 && r[i] < 1e11));
  }

  function drawTable(view, columns, rows, unit) {
    destroyChart(view);
    const kinds = columns.map((name, i) => (isTimeColumn(name, rows, i) ? "time"
      : rows.some((r) => typeof r[i] === "number") && !rows.some((r) => typeof r[i] === "string") ? "num" : "text"));
    const cellText = (v, i) => {
      if (v === null || v === undefined) return "";
      if (kinds[i] === "time") return fmtTime(v);
      if (typeof v === "number") {
        if (unit !== "short" && unit !== "none") return fmt(v, unit);
        return Number.isInteger(v) ? v.toLocaleString("en-US") : fmt(v, "none"); // counts in full
      }
      if (typeof v === "object") return JSON.stringify(v);
      if (ISO_TIME.test(v)) return fmtTime(Date.parse(v) / 1000); // other date-times come as ISO text, in UTC
      return String(v);
    };
    const sort = view.sort || null;
    const sorted = sort ? [...rows].sort((a, b) => {
      const x = a[sort.col];
      const y = b[sort.col];
      const cmp = typeof x === "number" && typeof y === "number" ? x - y : naturalCompare(x ?? "", y ?? "");
      return sort.dir * cmp;
    }) : rows;
    const head = el("tr");
    columns.forEach((name, i) => {
      const th = el("th", { className: kinds[i] === "num" ? "num" : null, text: name, scope: "col" });
      if (sort && sort.col === i) th.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
      th.addEventListener("click", () => {
        view.sort = sort && sort.col === i ? { col: i, dir: -sort.dir } : { col: i, dir: 1 };
        drawTable(view, columns, rows, unit);
      });
      head.append(th);
    });
    const body = el("tbody");
    for (const row of sorted) {
      const tr = el("tr");
      columns.forEach((name, i) => tr.append(el("td", { className: kinds[i] === "num" ? "num" : null,
        text: cellText(row[i], i) })));
      body.append(tr);
    }
    view.body.textContent = "";
    view.readout.textContent = "";
    view.body.append(el("table", { className: "data" }, el("thead", {}, head), body));
    setState(view, "ok", rows.length);
  }

  // ---------------------------------------------------------------- sizes and timers

  const bodies = new WeakMap();
  const resizing = new Set();
  const resizer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const view = bodies.get(entry.target);
      if (view && view.chart) resizing.add(view);
    }
    if (resizing.size) requestAnimationFrame(applyResizes); // outside the observer: no resize loop
  });

  function applyResizes() {
    for (const view of resizing) {
      if (!view.chart) continue;
      const size = chartSize(view);
      if (size.width !== view.chart.width || size.height !== view.chart.height) view.chart.setSize(size);
    }
    resizing.clear();
  }

  function startTimer() {
    clearInterval(state.timer);
    state.timer = 0;
    const seconds = REFRESHES[state.refresh];
    if (seconds > 0) {
      state.timer = setInterval(() => { if (!document.hidden) refreshAll(false); }, seconds * 1000);
    }
  }

  // ---------------------------------------------------------------- start

  function wireControls() {
    const range = $("range");
    const refresh = $("refresh");
    range.value = state.range;
    refresh.value = state.refresh;
    range.addEventListener("change", () => {
      state.range = range.value;
      writeUrl();
      loadVariables();
      refreshAll(true);
    });
    refresh.addEventListener("change", () => {
      state.refresh = refresh.value;
      writeUrl();
      startTimer();
    });
    $("reload").addEventListener("click", () => refreshAll(true));
    $("token-form").addEventListener("submit", onTokenSubmit);
    document.addEventListener("click", (event) => {
      for (const filter of state.filters) {
        if (!filter.root.contains(event.target)) closeFilter(filter);
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") for (const filter of state.filters) closeFilter(filter);
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && REFRESHES[state.refresh] > 0) refreshAll(false);
    });
  }

  async function main() {
    let answer;
    try {
      answer = await getJson("/api/dashboards", false);
    } catch (e) {
      readUrl();
      wireControls();
      return pageMessage("Cannot load the dashboards: " + e.message, true);
    }
    const suggested = Object.keys(REFRESHES).find((k) => REFRESHES[k] === answer.refresh_s);
    if (suggested) defaultRefresh = suggested;
    readUrl();
    wireControls();
    state.dashboards = Array.isArray(answer.dashboards) ? answer.dashboards : [];
    const wanted = dashboardPathName();
    state.dashboard = wanted === null ? state.dashboards[0] || null
      : state.dashboards.find((d) => d.name === wanted) || null;
    buildTabs();
    writeUrl();
    if (!state.dashboard) {
      return pageMessage(wanted === null ? "This worker has no dashboards." : `No dashboard named "${wanted}".`, true);
    }
    document.title = `${state.dashboard.title || state.dashboard.name} \u00b7 fleetpulse`;
    $("description").textContent = state.dashboard.description || "";
    buildFilters();
    buildGrid();
    loadVariables();
    refreshAll(true);
    startTimer();
  }

  main();
})();
