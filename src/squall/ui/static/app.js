// Squall UI: every page's script. Plain JavaScript, no build step, no dependencies.
// Pages read Storm's REST API (/api/v1/...) and refresh themselves every second or two.
"use strict";

const Squall = (() => {
  const REFRESH_MS = 1000;
  const params = new URLSearchParams(location.search);

  // -- small helpers ---------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.setAttribute("class", v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  const fmt = {
    int(n) {
      return n === null || n === undefined || n === "" ? "–" : Number(n).toLocaleString("en-US");
    },
    rate(x) {
      x = Number(x) || 0;
      if (x >= 1e6) return (x / 1e6).toFixed(1) + "M/s";
      if (x >= 1e4) return (x / 1e3).toFixed(0) + "k/s";
      if (x >= 999.5) return (x / 1e3).toFixed(1) + "k/s";
      if (x >= 10) return x.toFixed(0) + "/s";
      if (x > 0) return x.toFixed(1) + "/s";
      return "0/s";
    },
    ms(s) {
      return s === undefined || s === null ? "–" : `${s} ms`;
    },
    ago(secs) {
      if (secs === null || secs === undefined) return "";
      if (secs < 60) return `${secs}s ago`;
      if (secs < 3600) return `${Math.floor(secs / 60)}m ago`;
      if (secs < 86400) return `${Math.floor(secs / 3600)}h ago`;
      return `${Math.floor(secs / 86400)}d ago`;
    },
    time(epochSecs) {
      return new Date(epochSecs * 1000).toLocaleTimeString();
    },
  };

  function capLevel(c) {
    c = Number(c) || 0;
    return c >= 0.8 ? "bad" : c >= 0.5 ? "warn" : "ok";
  }

  // Capacity 0 -> calm green, 0.5 -> amber, 1 -> red (fill, border).
  function capColors(c) {
    c = Math.max(0, Math.min(1, Number(c) || 0));
    const hue = 140 - 140 * c;
    return [`hsl(${hue}, 62%, 93%)`, `hsl(${hue}, 58%, 38%)`];
  }

  function capBar(c) {
    const v = Math.max(0, Math.min(1, Number(c) || 0));
    return el("span", {}, el("span", { class: `bar ${capLevel(v)}` }, el("i", { style: `width:${(v * 100).toFixed(0)}%` })), c);
  }

  function pill(text, cls) {
    return el("span", { class: `pill ${cls || text}`, text });
  }

  let toastTimer = null;
  function toast(text, bad) {
    let t = document.querySelector(".toast");
    if (!t) document.body.append((t = el("div", { class: "toast", role: "status" })));
    t.textContent = text;
    t.className = `toast show${bad ? " bad" : ""}`;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (t.className = "toast"), 3500);
  }

  async function api(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await r.json();
    if (!r.ok) throw new Error(body.errorMessage || body.error || r.statusText);
    return body;
  }

  async function post(path) {
    const r = await fetch(path, { method: "POST" });
    const body = await r.json();
    if (!r.ok) throw new Error(body.errorMessage || body.error || r.statusText);
    return body;
  }

  // A modal confirmation, optionally with one number to fill in. Resolves to the number
  // (or true) when confirmed, null when cancelled.
  function confirmDialog({ title, text, input, ok, danger }) {
    return new Promise((resolve) => {
      let dlg = document.getElementById("confirm");
      if (dlg) dlg.remove();
      const field = input
        ? el("div", { class: "field" },
            el("label", { for: "confirm-input", text: input.label }),
            el("input", { id: "confirm-input", type: "number", min: input.min ?? 0, max: input.max ?? "", value: input.value }))
        : null;
      dlg = el("dialog", { id: "confirm" },
        el("form", { method: "dialog" },
          el("h3", { text: title }),
          el("p", { text }),
          field,
          el("div", { class: "buttons" },
            el("button", { class: "btn", value: "cancel", id: "confirm-cancel", text: "Cancel" }),
            el("button", { class: `btn ${danger ? "danger solid" : "primary"}`, value: "ok", id: "confirm-ok", text: ok || "OK" }))));
      document.body.append(dlg);
      dlg.addEventListener("close", () => {
        if (dlg.returnValue !== "ok") return resolve(null);
        resolve(input ? Number(document.getElementById("confirm-input").value) : true);
      });
      dlg.showModal();
      document.getElementById(input ? "confirm-input" : "confirm-ok").focus();
    });
  }

  function header(here) {
    const live = el("span", { class: "live", id: "live", text: "live" });
    document.body.prepend(
      el("header", { class: "top" },
        el("a", { class: "brand", href: "/index.html" }, "Squall", el("span", { text: " UI" })),
        el("nav", {},
          el("a", { href: "/index.html", class: here === "cluster" ? "here" : "", text: "Cluster" }),
          el("a", { href: "/logviewer.html", class: here === "logs" ? "here" : "", text: "Logs" }),
          el("a", { href: "/metrics", text: "Metrics" }),
          el("a", { href: "/api/v1/cluster/summary", text: "API" })),
        live));
  }

  // Run fn now and every ms; marks the header "stale" while requests fail.
  function every(ms, fn) {
    let running = false;
    async function tick() {
      if (running) return;
      running = true;
      try {
        await fn();
        document.getElementById("live")?.classList.remove("stale");
      } catch (e) {
        document.getElementById("live")?.classList.add("stale");
        console.warn(e);
      } finally {
        running = false;
      }
    }
    tick();
    return setInterval(tick, ms);
  }

  function table(columns, rows, empty) {
    if (!rows.length) return el("div", { class: "empty", text: empty || "Nothing yet." });
    return el("div", { class: "scroll" },
      el("table", {},
        el("thead", {}, el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : "", title: c.title || "", text: c.label })))),
        el("tbody", {}, rows.map((r) => el("tr", r._attrs || {}, columns.map((c) => {
          const v = c.value(r);
          return el("td", { class: c.num ? "num" : "" }, v instanceof Node ? v : String(v ?? ""));
        }))))));
  }

  // A right-aligned column of a whole-number field (counts: emitted, acked...).
  function countCol(label, field) {
    return { label, num: true, value: (r) => fmt.int(r[field]) };
  }

  function replace(id, node) {
    const old = document.getElementById(id);
    node.id = id;
    old.replaceWith(node);
  }

  function tile(label, value, small, cls) {
    return el("div", { class: `tile ${cls || ""}` },
      el("div", { class: "label", text: label }),
      el("div", { class: "value" }, value, small ? el("small", { text: ` ${small}` }) : null));
  }

  const WINDOWS = [["600", "10 min"], ["10800", "3 h"], ["86400", "1 day"], [":all-time", "All time"]];

  function windowPicker(current, onChange) {
    return el("div", { class: "seg", id: "window" }, WINDOWS.map(([w, label]) =>
      el("button", { class: w === current ? "on" : "", "data-window": w, text: label, onclick: () => onChange(w) })));
  }

  // Errors re-render only when they change, and keep the ones a reader opened open.
  function showErrors(id, errors, showComponent) {
    const old = document.getElementById(id);
    const sig = JSON.stringify(errors.map((e) => [e.time, e.task, e.error]));
    if (old.dataset.sig === sig) return;
    const open = new Set([...old.querySelectorAll("details[open]")].map((d) => d.dataset.key));
    const node = errorList(errors, showComponent);
    node.dataset.sig = sig;
    node.querySelectorAll("details").forEach((d) => (d.open = open.has(d.dataset.key)));
    replace(id, node);
  }

  function errorList(errors, showComponent) {
    if (!errors.length) return el("div", { class: "empty", text: "No errors." });
    return el("div", { class: "errors-list" }, errors.map((e) =>
      el("details", { class: "error", "data-key": `${e.time}|${e.component}|${e.task}|${e.error}` },
        el("summary", {},
          showComponent ? el("b", { text: `${e.component} #${e.task}` }) : el("b", { text: `task ${e.task}` }),
          el("span", { class: "err", text: e.error }),
          el("span", { class: "when", text: `${fmt.time(e.errorTime)} · ${e.errorHost}:${e.errorPort} · ${fmt.ago(e.errorLapsedSecs)}` })),
        el("pre", { class: "trace", text: e.traceback || e.error }),
        el("a", { href: e.errorWorkerLogLink, text: "worker log →" }))));
  }

  // -- the topology graph -------------------------------------------------------------------------
  const NODE_W = 200, NODE_H = 82, COL_GAP = 210, ROW_GAP = 40, PAD = 28;

  function layout(viz) {
    const names = Object.keys(viz).sort();
    const succ = Object.fromEntries(names.map((n) => [n, []]));
    const edges = [];
    for (const n of names) {
      for (const inp of viz[n][":inputs"]) {
        if (!(inp[":component"] in viz)) continue;
        succ[inp[":component"]].push(n);
        edges.push({ from: inp[":component"], to: n, input: inp });
      }
    }
    // Back edges (cycles) are found by DFS from the spouts and left out of the layering.
    const state = {}, back = new Set();
    const roots = names.filter((n) => viz[n][":type"] === "spout");
    function dfs(n) {
      state[n] = 1;
      for (const m of succ[n]) {
        if (state[m] === 1) back.add(`${n}>${m}`);
        else if (!state[m]) dfs(m);
      }
      state[n] = 2;
    }
    roots.concat(names).forEach((n) => state[n] || dfs(n));
    const layer = Object.fromEntries(names.map((n) => [n, 0]));
    for (let i = 0; i < names.length; i++) {
      for (const e of edges) {
        if (back.has(`${e.from}>${e.to}`) || e.from === e.to) continue;
        layer[e.to] = Math.max(layer[e.to], layer[e.from] + 1);
      }
    }
    const columns = [];
    for (const n of names) (columns[layer[n]] ||= []).push(n);
    // Barycenter sweeps to untangle edges.
    const pos = {};
    columns.forEach((col) => col.forEach((n, i) => (pos[n] = i)));
    for (let sweep = 0; sweep < 4; sweep++) {
      for (let c = 1; c < columns.length; c++) {
        const bary = (n) => {
          const preds = edges.filter((e) => e.to === n && layer[e.from] < c).map((e) => pos[e.from]);
          return preds.length ? preds.reduce((a, b) => a + b, 0) / preds.length : pos[n];
        };
        columns[c].sort((a, b) => bary(a) - bary(b));
        columns[c].forEach((n, i) => (pos[n] = i));
      }
    }
    const tallest = Math.max(...columns.map((c) => c.length));
    const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP + 40;
    const width = PAD * 2 + columns.length * NODE_W + (columns.length - 1) * COL_GAP;
    const xy = {};
    columns.forEach((col, c) => {
      const colHeight = col.length * NODE_H + (col.length - 1) * ROW_GAP;
      const top = (height - 40 - colHeight) / 2;
      col.forEach((n, i) => (xy[n] = { x: PAD + c * (NODE_W + COL_GAP), y: top + i * (NODE_H + ROW_GAP) }));
    });
    return { names, edges, xy, width: Math.max(width, 400), height, back };
  }

  // k: this edge's offset among the parallel edges of one pair (0 for a single edge).
  function edgePath(a, b, k, backward) {
    if (!backward) {
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2 + k * 24;
      const x2 = b.x - 6, y2 = b.y + NODE_H / 2 + k * 24;
      const dx = Math.max(40, (x2 - x1) / 2);
      return { d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, mx: (x1 + x2) / 2, my: (y1 + y2) / 2 };
    }
    // A cycle or a self-loop: leave from the bottom, come back in from below.
    const x1 = a.x + NODE_W * 0.7, y1 = a.y + NODE_H;
    const x2 = b.x + NODE_W * 0.3, y2 = b.y + NODE_H + 6;
    const low = Math.max(y1, y2) + 46 + Math.abs(k) * 24;
    return { d: `M${x1},${y1} C${x1},${low} ${x2},${low} ${x2},${y2}`, mx: (x1 + x2) / 2, my: low - 10 };
  }

  function drawGraph(container, viz, topologyId) {
    const lay = layout(viz);
    const root = svg("svg", { class: "graph", width: lay.width, height: lay.height, viewBox: `0 0 ${lay.width} ${lay.height}`, role: "img", "aria-label": "topology graph" });
    root.append(svg("defs", {},
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8592a8" }))));
    const seen = {}, total = {};
    for (const e of lay.edges) total[`${e.from}>${e.to}`] = (total[`${e.from}>${e.to}`] || 0) + 1;
    const edgeLayer = svg("g", { class: "edges" });
    const labelLayer = svg("g", { class: "labels" });
    for (const e of lay.edges) {
      const pair = `${e.from}>${e.to}`;
      const i = (seen[pair] = (seen[pair] ?? -1) + 1);
      const k = i - (total[pair] - 1) / 2;
      const backward = lay.back.has(pair) || e.from === e.to || lay.xy[e.to].x <= lay.xy[e.from].x;
      const p = edgePath(lay.xy[e.from], lay.xy[e.to], k, backward);
      const key = `${e.from}|${e.input[":stream"]}|${e.to}`;
      const g = svg("g", { class: "edge", "data-edge": key });
      g.append(svg("path", { d: p.d, "marker-end": "url(#arrow)", "stroke-width": 1.5 }));
      edgeLayer.append(g);
      const lg = svg("g", { class: "edge", "data-edge-label": key, transform: `translate(${p.mx},${p.my})` });
      lg.append(svg("rect", { class: "label-bg", x: -60, y: -10, width: 120, height: 20 }));
      lg.append(svg("text", { "text-anchor": "middle", y: 4, class: "edge-text" }));
      labelLayer.append(lg);
    }
    root.append(edgeLayer);
    const nodeLayer = svg("g", { class: "nodes" });
    for (const n of lay.names) {
      const { x, y } = lay.xy[n];
      const d = viz[n];
      const g = svg("g", { class: "node", "data-component": n, transform: `translate(${x},${y})`, tabindex: 0 });
      g.addEventListener("click", () => (location.href = `/component.html?topology_id=${encodeURIComponent(topologyId)}&id=${encodeURIComponent(n)}`));
      g.append(svg("rect", { class: "box", width: NODE_W, height: NODE_H }));
      g.append(svg("text", { class: "name", x: 14, y: 24, text: n.length > 20 ? n.slice(0, 19) + "…" : n }));
      g.append(svg("text", { class: "kind", x: NODE_W - 12, y: 22, "text-anchor": "end", text: d[":type"] }));
      g.append(svg("text", { class: "line detail", x: 14, y: 46 }));
      g.append(svg("text", { class: "line rate", x: 14, y: 67 }));
      const badge = svg("g", { class: "errors", transform: `translate(${NODE_W - 2},0)`, visibility: "hidden" },
        svg("rect", { class: "errbadge", x: -16, y: -11, width: 32, height: 20, rx: 10 }), svg("text", { class: "errtext", "text-anchor": "middle", y: 3 }));
      badge.append(svg("title", { text: "errors raised by this component (see its page)" }));
      g.append(badge);
      g.append(svg("title", { text: `${n} (${d[":type"]}) — open the component page` }));
      nodeLayer.append(g);
    }
    root.append(nodeLayer, labelLayer);
    container.replaceChildren(root);
    root.dataset.shape = shapeOf(viz);
    updateGraph(root, viz);
    return root;
  }

  function shapeOf(viz) {
    return Object.keys(viz).sort().map((n) => n + ":" + viz[n][":inputs"].map((i) => i[":component"] + "/" + i[":stream"]).join(",")).join(";");
  }

  function updateGraph(root, viz) {
    for (const [n, d] of Object.entries(viz)) {
      const g = root.querySelector(`g.node[data-component="${CSS.escape(n)}"]`);
      if (!g) continue;
      const box = g.querySelector("rect.box");
      let fill, stroke;
      if (d[":type"] === "spout") [fill, stroke] = ["#e9f1fe", "#3d7be0"];
      else [fill, stroke] = capColors(d[":capacity"]);
      box.setAttribute("fill", fill);
      box.setAttribute("stroke", stroke);
      g.classList.toggle("pressure", !!d[":backpressure"]);
      const par = `×${d[":executors"]}`;
      g.querySelector(".detail").textContent = d[":type"] === "spout"
        ? `${par} · complete ${d[":latency"]} ms`
        : `${par} · capacity ${Number(d[":capacity"]).toFixed(3)}`;
      const rate = d[":type"] === "spout" ? d[":emitRate"] : d[":executeRate"];
      g.querySelector(".rate").textContent = `${d[":type"] === "spout" ? "emit" : "exec"} ${fmt.rate(rate)}` +
        (d[":failRate"] > 0 ? ` · ${fmt.rate(d[":failRate"])} failed` : "");
      g.dataset.rate = rate;
      g.dataset.emitted = d[":emitted"];
      const badge = g.querySelector("g.errors");
      badge.setAttribute("visibility", d[":errors"] > 0 ? "visible" : "hidden");
      badge.querySelector("text").textContent = d[":errors"] > 999 ? "999+" : d[":errors"];
      for (const inp of d[":inputs"]) {
        const key = `${inp[":component"]}|${inp[":stream"]}|${n}`;
        const edge = root.querySelector(`g[data-edge="${CSS.escape(key)}"]`);
        const label = root.querySelector(`g[data-edge-label="${CSS.escape(key)}"]`);
        if (!edge || !label) continue;
        const r = inp[":rate"] || 0;
        edge.classList.toggle("active", r > 0);
        edge.querySelector("path").setAttribute("stroke-width", (1.5 + Math.min(4.5, Math.log10(1 + r))).toFixed(2));
        const grouping = inp[":groupingFields"]?.length ? `${inp[":grouping"]}(${inp[":groupingFields"].join(",")})` : inp[":grouping"];
        const stream = inp[":stream"] === "default" ? "" : `${inp[":stream"]}: `;
        const text = `${stream}${grouping} · ${fmt.rate(r)}`;
        const t = label.querySelector("text");
        t.textContent = text;
        label.dataset.rate = r;
        const w = Math.max(60, text.length * 6.6 + 18);
        const bg = label.querySelector("rect");
        bg.setAttribute("x", -w / 2);
        bg.setAttribute("width", w);
      }
    }
  }

  // -- pages --------------------------------------------------------------------------------------
  async function clusterPage() {
    header("cluster");
    every(2000, async () => {
      const [cluster, tops, nimbus, sups] = await Promise.all([
        api("/api/v1/cluster/summary"), api("/api/v1/topology/summary"),
        api("/api/v1/nimbus/summary"), api("/api/v1/supervisor/summary")]);
      document.getElementById("mode").textContent = cluster.mode === "local" ? "local mode" : "cluster";
      replace("tiles", el("div", { class: "tiles" },
        tile("Topologies", fmt.int(cluster.topologies)),
        tile("Supervisors", fmt.int(cluster.supervisors)),
        tile("Slots used", fmt.int(cluster.slotsUsed), `of ${fmt.int(cluster.slotsTotal)}`),
        tile("Executors", fmt.int(cluster.executorsTotal)),
        tile("Tasks", fmt.int(cluster.tasksTotal)),
        tile("Version", cluster.stormVersion)));
      replace("topologies", table([
        { label: "Name", value: (t) => el("a", { href: `/topology.html?id=${encodeURIComponent(t.id)}`, text: t.name }) },
        { label: "Id", value: (t) => el("span", { class: "muted mono", text: t.id }) },
        { label: "Status", value: (t) => pill(t.status) },
        { label: "Uptime", value: (t) => t.uptime || "0s" },
        { label: "Workers", num: true, value: (t) => t.workersTotal },
        { label: "Executors", num: true, value: (t) => t.executorsTotal },
        { label: "Tasks", num: true, value: (t) => t.tasksTotal },
        { label: "Owner", value: (t) => t.owner },
      ], tops.topologies, "No topologies running."));
      replace("nimbuses", table([
        { label: "Host", value: (n) => n.host }, { label: "Port", num: true, value: (n) => n.port },
        { label: "Status", value: (n) => n.status }, { label: "Version", value: (n) => n.version },
        { label: "Uptime", value: (n) => n.nimbusUpTime || "0s" },
      ], nimbus.nimbuses));
      replace("supervisors", table([
        { label: "Id", value: (s) => s.id }, { label: "Host", value: (s) => s.host },
        { label: "Uptime", value: (s) => s.uptime || "0s" },
        { label: "Slots", num: true, value: (s) => s.slotsTotal },
        { label: "Used", num: true, value: (s) => s.slotsUsed },
        { label: "Version", value: (s) => s.version },
      ], sups.supervisors));
    });
  }

  async function topologyPage() {
    header("topology");
    const id = params.get("id");
    let window = params.get("window") || ":all-time";
    let sys = params.get("sys") === "1";
    let lastDoc = null;
    let graphRoot = null;

    function setWindow(w) {
      window = w;
      document.querySelectorAll("#window button").forEach((b) => b.classList.toggle("on", b.dataset.window === w));
      refresh();
    }
    document.getElementById("controls").append(
      windowPicker(window, setWindow),
      el("label", { class: "check" }, el("input", { type: "checkbox", id: "sys", checked: sys, onchange: (e) => { sys = e.target.checked; graphRoot = null; refresh(); } }), "system components"));

    async function act(op) {
      const name = lastDoc ? lastDoc.name : id;
      const timeout = lastDoc ? lastDoc.msgTimeout : 30;
      let path = null;
      if (op === "activate") {
        if (await confirmDialog({ title: "Activate topology?", text: `The spouts of ${name} start emitting again.`, ok: "Activate" })) path = "activate";
      } else if (op === "deactivate") {
        if (await confirmDialog({ title: "Deactivate topology?", text: `The spouts of ${name} stop emitting; tuples in flight finish.`, ok: "Deactivate" })) path = "deactivate";
      } else if (op === "rebalance") {
        const w = await confirmDialog({ title: "Rebalance topology?", text: `Spouts of ${name} pause while the topology is rebalanced.`, input: { label: "Wait (seconds)", value: timeout }, ok: "Rebalance" });
        if (w !== null) path = `rebalance/${w}`;
      } else if (op === "kill") {
        const w = await confirmDialog({ title: `Kill ${name}?`, text: "Spouts stop at once; the topology is removed after the wait.", input: { label: "Wait (seconds)", value: timeout }, ok: "Kill", danger: true });
        if (w !== null) path = `kill/${w}`;
      } else if (op === "debug") {
        const on = !(lastDoc && lastDoc.debug);
        const pct = on ? await confirmDialog({ title: "Sample tuples?", text: "Log a share of the tuples every component emits (debug sampling).", input: { label: "Sampling %", value: lastDoc ? lastDoc.samplingPct : 10, min: 1, max: 100 }, ok: "Start sampling" }) : 0;
        if (pct !== null) path = `debug/${on ? "enable" : "disable"}/${pct}`;
      }
      if (!path) return;
      try {
        await post(`/api/v1/topology/${encodeURIComponent(id)}/${path}`);
        toast(`${op}: done`);
        if (op === "kill") setTimeout(() => (location.href = "/index.html"), 800);
        refresh();
      } catch (e) {
        toast(`${op} failed: ${e.message}`, true);
      }
    }
    for (const op of ["activate", "deactivate", "rebalance", "kill", "debug"]) {
      document.getElementById(`btn-${op}`).addEventListener("click", () => act(op));
    }

    async function refresh() {
      const q = `window=${encodeURIComponent(window)}&sys=${sys ? 1 : 0}`;
      const [doc, viz] = await Promise.all([
        api(`/api/v1/topology/${encodeURIComponent(id)}?${q}`),
        api(`/api/v1/topology/${encodeURIComponent(id)}/visualization?${q}`)]);
      lastDoc = doc;
      document.title = `${doc.name} · Squall`;
      document.getElementById("name").textContent = doc.name;
      replace("status", pill(doc.status));
      document.getElementById("meta").textContent = `${doc.id} · up ${doc.uptime || "0s"} · ${doc.workersTotal} worker${doc.workersTotal === 1 ? "" : "s"} · ${doc.executorsTotal} executors · ${doc.tasksTotal} tasks`;
      document.getElementById("btn-activate").disabled = doc.status === "ACTIVE";
      document.getElementById("btn-deactivate").disabled = doc.status !== "ACTIVE";
      document.getElementById("btn-debug").textContent = doc.debug ? `Stop sampling (${doc.samplingPct}%)` : "Debug";

      const stats = doc.topologyStats.find((s) => s.window === window) || doc.topologyStats[0];
      const nodes = Object.values(viz);
      const emitRate = nodes.filter((n) => n[":type"] === "spout").reduce((a, n) => a + n[":emitRate"], 0);
      const ackRate = nodes.filter((n) => n[":type"] === "spout").reduce((a, n) => a + n[":ackRate"], 0);
      replace("tiles", el("div", { class: "tiles" },
        tile("Spout emit rate", fmt.rate(emitRate).replace("/s", ""), "tuples/s"),
        tile("Acked rate", fmt.rate(ackRate).replace("/s", ""), "trees/s"),
        tile(`Emitted · ${stats.windowPretty}`, fmt.int(stats.emitted)),
        tile("Acked", fmt.int(stats.acked)),
        tile("Failed", fmt.int(stats.failed), "", stats.failed > 0 ? "bad" : ""),
        tile("Complete latency", stats.completeLatency, "ms")));

      const container = document.getElementById("graph");
      if (!graphRoot || graphRoot.dataset.shape !== shapeOf(viz)) graphRoot = drawGraph(container, viz, id);
      else updateGraph(graphRoot, viz);

      const compLink = (c) => el("a", { href: `/component.html?topology_id=${encodeURIComponent(id)}&id=${encodeURIComponent(c)}`, text: c });
      const errCell = (r) => r.lastError ? el("span", { class: "err", title: r.lastError, text: r.lastError.length > 48 ? r.lastError.slice(0, 47) + "…" : r.lastError }) : "";
      replace("spouts", table([
        { label: "Spout", value: (s) => compLink(s.spoutId) },
        { label: "Executors", num: true, value: (s) => s.executors },
        { label: "Tasks", num: true, value: (s) => s.tasks },
        countCol("Emitted", "emitted"),
        countCol("Transferred", "transferred"),
        { label: "Complete (ms)", title: "complete latency: spout emit to tree acked", num: true, value: (s) => s.completeLatency },
        countCol("Acked", "acked"),
        countCol("Failed", "failed"),
        { label: "Last error", value: errCell },
      ], doc.spouts, "No spouts."));
      replace("bolts", table([
        { label: "Bolt", value: (b) => compLink(b.boltId) },
        { label: "Executors", num: true, value: (b) => b.executors },
        { label: "Tasks", num: true, value: (b) => b.tasks },
        countCol("Emitted", "emitted"),
        countCol("Transferred", "transferred"),
        { label: "Capacity (10m)", title: "share of the last 10 minutes spent executing; near 1 means overloaded", value: (b) => capBar(b.capacity) },
        countCol("Executed", "executed"),
        { label: "Execute (ms)", title: "execute latency: time inside process()", num: true, value: (b) => b.executeLatency },
        { label: "Process (ms)", title: "process latency: start of process() to ack", num: true, value: (b) => b.processLatency },
        countCol("Acked", "acked"),
        countCol("Failed", "failed"),
        { label: "Last error", value: errCell },
      ], doc.bolts, "No bolts."));
      replace("workers", table([
        { label: "Host", value: (w) => w.host },
        { label: "Port", num: true, value: (w) => w.port },
        { label: "Pid", num: true, value: (w) => w.pid ?? "in-process" },
        { label: "Uptime", value: (w) => w.uptime || "0s" },
        { label: "Executors", num: true, value: (w) => w.executorsTotal },
        { label: "Log", value: (w) => el("a", { href: w.workerLogLink, text: "worker.log" }) },
      ], doc.workers));
      showErrors("errors", (doc.topologyErrors || []).slice(-6).reverse(), true);
      replace("windows", table([
        { label: "Window", value: (s) => s.windowPretty },
        countCol("Emitted", "emitted"),
        countCol("Transferred", "transferred"),
        { label: "Complete latency (ms)", num: true, value: (s) => s.completeLatency },
        countCol("Acked", "acked"),
        countCol("Failed", "failed"),
      ], doc.topologyStats));
      const conf = document.getElementById("conf");
      if (!conf.dataset.filled) {
        conf.dataset.filled = "1";
        conf.replaceChildren(el("dl", { class: "kv" }, Object.keys(doc.configuration).sort().flatMap((k) =>
          [el("dt", { text: k }), el("dd", { text: JSON.stringify(doc.configuration[k]) })])));
      }
    }
    every(REFRESH_MS, refresh);
  }

  async function componentPage() {
    header("component");
    const tid = params.get("topology_id");
    const cid = params.get("id");
    let window = params.get("window") || ":all-time";
    let lastDoc = null;
    document.getElementById("topo-link").href = `/topology.html?id=${encodeURIComponent(tid)}`;
    document.getElementById("controls").append(windowPicker(window, (w) => {
      window = w;
      document.querySelectorAll("#window button").forEach((b) => b.classList.toggle("on", b.dataset.window === w));
      refresh();
    }));
    document.getElementById("debug-apply").addEventListener("click", async () => {
      const on = document.getElementById("debug-on").checked;
      const pct = Number(document.getElementById("debug-pct").value) || 10;
      const path = `/api/v1/topology/${encodeURIComponent(tid)}/component/${encodeURIComponent(cid)}/debug/${on ? "enable" : "disable"}/${pct}`;
      try {
        await post(path);
        toast(on ? `sampling ${pct}% of ${cid}'s tuples` : "sampling stopped");
        refresh();
      } catch (e) {
        toast(`debug failed: ${e.message}`, true);
      }
    });

    async function refresh() {
      const doc = await api(`/api/v1/topology/${encodeURIComponent(tid)}/component/${encodeURIComponent(cid)}?window=${encodeURIComponent(window)}`);
      const first = !lastDoc;
      lastDoc = doc;
      document.title = `${doc.id} · ${doc.name} · Squall`;
      document.getElementById("topo-link").textContent = doc.name;
      document.getElementById("name").textContent = doc.id;
      replace("kind", pill(doc.componentType));
      replace("status", pill(doc.topologyStatus));
      document.getElementById("meta").textContent = `${doc.executors} executor${doc.executors === 1 ? "" : "s"} · ${doc.tasks} task${doc.tasks === 1 ? "" : "s"} · topology ${doc.topologyId}`;
      if (first) {
        document.getElementById("debug-on").checked = doc.debug;
        document.getElementById("debug-pct").value = doc.samplingPct;
      }
      const spout = doc.componentType === "spout";
      replace("windows", table(spout ? [
        { label: "Window", value: (s) => s.windowPretty },
        countCol("Emitted", "emitted"),
        countCol("Transferred", "transferred"),
        { label: "Complete latency (ms)", num: true, value: (s) => s.completeLatency },
        countCol("Acked", "acked"),
        countCol("Failed", "failed"),
      ] : [
        { label: "Window", value: (s) => s.windowPretty },
        countCol("Emitted", "emitted"),
        countCol("Transferred", "transferred"),
        countCol("Executed", "executed"),
        { label: "Execute latency (ms)", num: true, value: (s) => s.executeLatency },
        { label: "Process latency (ms)", num: true, value: (s) => s.processLatency },
        { label: "Capacity", value: (s) => capBar(s.capacity) },
        countCol("Acked", "acked"),
        countCol("Failed", "failed"),
      ], spout ? doc.spoutSummary : doc.boltStats));
      document.getElementById("inputs-card").hidden = spout;
      if (!spout) {
        replace("inputs", table([
          { label: "From", value: (i) => el("a", { href: `/component.html?topology_id=${encodeURIComponent(tid)}&id=${encodeURIComponent(i.component)}`, text: i.component }) },
          { label: "Stream", value: (i) => i.stream },
          countCol("Executed", "executed"),
          { label: "Execute (ms)", num: true, value: (i) => i.executeLatency },
          countCol("Acked", "acked"),
          countCol("Failed", "failed"),
        ], doc.inputStats, "Nothing received yet."));
      }
      replace("outputs", table(spout ? [
        { label: "Stream", value: (o) => o.stream },
        countCol("Emitted", "emitted"),
        countCol("Transferred", "transferred"),
        { label: "Complete (ms)", num: true, value: (o) => o.completeLatency },
        countCol("Acked", "acked"),
        countCol("Failed", "failed"),
      ] : [
        { label: "Stream", value: (o) => o.stream },
        countCol("Emitted", "emitted"),
        countCol("Transferred", "transferred"),
      ], doc.outputStats, "Nothing emitted yet."));
      const execCols = [
        { label: "Executor", value: (e) => e.id },
        { label: "Worker", value: (e) => `${e.host}:${e.port}` },
        { label: "Uptime", value: (e) => e.uptime || "0s" },
        countCol("Emitted", "emitted"),
        countCol("Transferred", "transferred"),
      ];
      if (spout) {
        execCols.push(
          { label: "Complete (ms)", num: true, value: (e) => e.completeLatency },
          countCol("Pending", "pending"));
      } else {
        execCols.push(
          { label: "Capacity", value: (e) => capBar(e.capacity) },
          countCol("Executed", "executed"),
          { label: "Execute (ms)", num: true, value: (e) => e.executeLatency });
      }
      execCols.push(
        countCol("Acked", "acked"),
        countCol("Failed", "failed"),
        { label: "Queue", num: true, value: (e) => e.backpressure ? el("span", { class: "err", text: `${fmt.int(e.queued)} (full)` }) : fmt.int(e.queued) },
        { label: "Metrics", value: (e) => el("span", { class: "mono", text: Object.entries(e.metrics || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("  ") }) },
        { label: "Log", value: (e) => el("a", { href: e.workerLogLink, text: "worker.log" }) });
      replace("executors", table(execCols, doc.executorStats));
      showErrors("errors", doc.componentErrors, false);
      document.getElementById("events-link").href = doc.eventLogLink;
      const events = await api(`/api/v1/topology/${encodeURIComponent(tid)}/events?component=${encodeURIComponent(cid)}&limit=50`);
      replace("events", table([
        { label: "Time", value: (e) => fmt.time(e.ts) },
        { label: "Task", num: true, value: (e) => e.task },
        { label: "Stream", value: (e) => e.stream },
        { label: "Message id", value: (e) => e.msgId ?? "" },
        { label: "Values", value: (e) => el("span", { class: "mono", text: JSON.stringify(e.values) }) },
      ], events.events.slice(-20).reverse(), doc.debug ? "Sampling: waiting for tuples…" : "Turn on debug sampling to see the tuples this component emits."));
    }
    every(REFRESH_MS, refresh);
  }

  async function logPage() {
    header("logs");
    const file = params.get("file");
    // On a cluster the same file name exists on several machines: node names the supervisor.
    const node = params.get("node");
    const nodeArg = node ? `&node=${encodeURIComponent(node)}` : "";
    let follow = true;
    const pre = document.getElementById("log");
    document.getElementById("follow").addEventListener("change", (e) => (follow = e.target.checked));
    async function files() {
      const list = await api("/api/v1/logs");
      replace("files", table([
        { label: "File", value: (f) => el("a", { href: `/logviewer.html?file=${encodeURIComponent(f.file)}${f.node ? `&node=${encodeURIComponent(f.node)}` : ""}`, text: f.file }) },
        { label: "Host", value: (f) => f.host || "" },
        countCol("Size", "size"),
        { label: "Modified", value: (f) => new Date(f.modified * 1000).toLocaleString() },
      ], list.files, list.logDir ? `No log files in ${list.logDir} yet.` : "This UI keeps no log files."));
      document.getElementById("logdir").textContent = list.logDir || "";
    }
    if (!file) {
      document.getElementById("viewer").hidden = true;
      every(3000, files);
      return;
    }
    document.getElementById("file").textContent = node ? `${file} (${node})` : file;
    document.getElementById("download").href = `/api/v1/log?file=${encodeURIComponent(file)}${nodeArg}&start=0&length=1000000000`;
    files();
    every(2000, async () => {
      const r = await fetch(`/api/v1/log?file=${encodeURIComponent(file)}${nodeArg}&length=200000`);
      if (!r.ok) throw new Error((await r.json()).errorMessage);
      const text = await r.text();
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 30;
      if (pre.textContent !== text) {
        pre.textContent = text;
        if (follow && atBottom) pre.scrollTop = pre.scrollHeight;
      }
      document.getElementById("size").textContent = `${fmt.int(r.headers.get("X-Log-Size"))} bytes`;
    });
    pre.scrollTop = pre.scrollHeight;
  }

  const pages = { cluster: clusterPage, topology: topologyPage, component: componentPage, logs: logPage };
  document.addEventListener("DOMContentLoaded", () => pages[document.body.dataset.page]());
  return { fmt, layout, capColors };
})();
