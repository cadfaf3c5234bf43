// The stepper's trace viewer (mounted by ui/trace_viewer.py with st.components.v2).
//
// Python sends one step's whole trace once (data.view: the arrays zlib-compressed, and per stop
// its title, equations, words and each quantity's statistics). Everything here happens in the
// browser with no message to the server: moving between stops, drawing the heatmaps, reading the
// hovered cell. Two things go back as trigger values: a clicked cell ("cell"), which Python
// explains with core.teach.explain (the answer comes through answer.js, so this component's data,
// the whole step, is not sent again), and "Train one mini-batch" ("train").
//
// No number of the step is computed here: the values shown are the engine's float32s, the
// statistics, colour limits and explanations come from Python. This file only draws.

const VIEWERS = new WeakMap();   // one viewer per mounted component (its parentElement)
let katexLoad = null;            // KaTeX, loaded once per page from the app's static files

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let viewer = VIEWERS.get(parentElement);
  if (!viewer) {
    viewer = new Viewer(parentElement);
    VIEWERS.set(parentElement, viewer);
  }
  viewer.send = setTriggerValue;
  viewer.update(data);
  return viewer.cleanup;
}

// ------------------------------------------------------------------------------------ the numbers
const TYPED = { float32: Float32Array, float64: Float64Array, uint8: Uint8Array, int32: Int32Array };

function base64Bytes(text) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function unpack(view) {
  const stream = new Blob([base64Bytes(view.blob)]).stream().pipeThrough(new DecompressionStream("deflate"));
  const buffer = await new Response(stream).arrayBuffer();
  const arrays = {};
  for (const e of view.arrays) {
    arrays[e.name] = { values: new TYPED[e.dtype](buffer, e.offset, e.length), shape: e.shape, dtype: e.dtype };
  }
  return arrays;
}

// the shortest text that reads back as the same float32 (as numpy prints it)
function numberText(v, dtype) {
  if (dtype !== "float32" && dtype !== "float64") return String(v);
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : (v > 0 ? "inf" : "-inf");
  if (dtype === "float64") return String(v);
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return s.replace("e+", "e");
  }
  return v.toPrecision(9);
}

// ------------------------------------------------------------------------------------ colours
function lut(hex) {
  const n = hex.length / 6, out = new Uint8Array(n * 3);
  for (let i = 0; i < n * 3; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

// the quantity as an image, one pixel per cell, on the scale Python chose
function bitmap(q, arr, luts) {
  const rows = q.shape.length === 2 ? q.shape[0] : (q.per_sample ? q.shape[0] : 1);
  const cols = q.shape.length === 2 ? q.shape[1] : (q.per_sample ? 1 : q.shape[0] || 1);
  const canvas = document.createElement("canvas");
  canvas.width = cols; canvas.height = rows;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(cols, rows);
  const px = img.data, vals = arr.values, table = luts[q.scale];
  const n = table.length / 3, span = q.hi - q.lo || 1;
  for (let k = 0; k < vals.length; k++) {
    const v = vals[k];
    let i;
    if (q.scale === "labels") i = Math.min(n - 1, Math.max(0, v | 0));
    else if (Number.isNaN(v)) i = -1;
    else i = Math.min(n - 1, Math.max(0, Math.round(((v - q.lo) / span) * (n - 1))));
    const o = 4 * k;
    if (i < 0) { px[o] = 0; px[o + 1] = 0; px[o + 2] = 0; }
    else { px[o] = table[3 * i]; px[o + 1] = table[3 * i + 1]; px[o + 2] = table[3 * i + 2]; }
    px[o + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return { canvas, rows, cols };
}

// ------------------------------------------------------------------------------------ KaTeX
function loadKatex(base) {
  if (katexLoad) return katexLoad;
  const root = new URL(base, document.baseURI).href;
  katexLoad = (async () => {
    const css = await (await fetch(root + "katex.min.css")).text();
    const absolute = css.replaceAll("url(fonts/", `url(${root}fonts/`);
    // fonts must be declared in the document: @font-face inside a shadow root is ignored
    if (!document.getElementById("tv-katex-fonts")) {
      const style = document.createElement("style");
      style.id = "tv-katex-fonts";
      style.textContent = (absolute.match(/@font-face\{[^}]*\}/g) || []).join("\n");
      document.head.appendChild(style);
    }
    if (!window.katex) {
      await new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = root + "katex.min.js";
        s.onload = resolve;
        s.onerror = () => reject(new Error("KaTeX did not load"));
        document.head.appendChild(s);
      });
    }
    return { katex: window.katex, css: absolute.replace(/@font-face\{[^}]*\}/g, "") };
  })();
  katexLoad.catch(() => { katexLoad = null; });
  return katexLoad;
}

// ------------------------------------------------------------------------------------ the viewer
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

class Viewer {
  constructor(parent) {
    this.parent = parent;
    const $ = (s) => parent.querySelector(s);
    this.root = $(".tv");
    this.ui = {
      prev: $(".tv-prev"), next: $(".tv-next"), count: $(".tv-count"), step: $(".tv-step"),
      keys: $(".tv-keys"), help: $(".tv-help"), train: $(".tv-train"), strip: $(".tv-strip"),
      stop: $(".tv-stop"), title: $(".tv-title"), eqs: $(".tv-eqs"), words: $(".tv-words"),
      facts: $(".tv-facts"), rows: $(".tv-rows"), readout: $(".tv-readout"), explain: $(".tv-explain"),
    };
    this.viewId = null;
    this.pos = 0;
    this.tex = new Map();      // LaTeX → HTML, typeset once
    this.katex = null;
    this.bitmaps = new Map();  // quantity → its image
    this.answer = null;        // the explanation shown (from Python)
    this.selected = null;      // {name, index} of the clicked cell
    this.ui.prev.addEventListener("click", (e) => this.go(this.pos - 1, e));
    this.ui.next.addEventListener("click", (e) => this.go(this.pos + 1, e));
    this.ui.train.addEventListener("click", (e) => this.train(e));
    this.ui.keys.addEventListener("click", () => this.toggleHelp());
    this.onKey = (e) => this.key(e);
    document.addEventListener("keydown", this.onKey);
    this.onAnswer = (e) => {
      if (!e.detail || e.detail.viewer !== this.data?.key) return;
      this.takeAnswer(e.detail.answer);
      if (this.view) { this.renderExplain(); this.paintMarks(); }
    };
    window.addEventListener("trace-viewer-answer", this.onAnswer);
    this.onResize = new ResizeObserver(() => this.paint());
    this.onResize.observe(this.ui.rows);
    this.cleanup = () => {
      document.removeEventListener("keydown", this.onKey);
      window.removeEventListener("trace-viewer-answer", this.onAnswer);
      this.onResize.disconnect();
      VIEWERS.delete(this.parent);
    };
  }

  // -- data from Python
  update(data) {
    this.data = data;
    const view = data.view;
    this.root.classList.toggle("tv-present", Boolean(data.present));   // the app's presentation mode
    this.ui.step.textContent = data.step_label || "";
    this.ui.step.title = data.step_label || "";
    this.ui.train.disabled = !data.can_train;
    this.ui.train.title = data.can_train ? "Train your network on one more mini-batch (n)" : (data.train_help || "");
    this.ui.train.classList.remove("tv-pending");
    if (!this.katex) {
      loadKatex(data.katex).then((k) => {
        this.katex = k;
        const style = el("style");
        style.textContent = k.css;
        this.parent.appendChild(style);
        this.tex.clear();
        if (this.view) { this.renderEquations(); this.renderExplain(); }
      }).catch(() => {});   // the equations stay readable as LaTeX source
    }
    if (view.id !== this.viewId) {
      this.viewId = view.id;
      this.view = null;
      this.start = data.start;
      this.answer = null;
      this.selected = null;
      this.bitmaps.clear();
      this.root.dataset.state = "loading";
      this.ui.stop.hidden = true;
      const id = view.id, t0 = performance.now();
      if (this.trainedFrom !== undefined) this.root.dataset.trainedArrivedMs = (t0 - this.trainedFrom).toFixed(1);
      unpack(view).then((arrays) => {
        this.root.dataset.unpackMs = (performance.now() - t0).toFixed(1);
        if (this.viewId !== id) return;             // a newer step came meanwhile
        this.view = view;
        this.arrays = arrays;
        this.luts = Object.fromEntries(Object.entries(view.colours).map(([k, v]) => [k, lut(v)]));
        this.pos = Math.max(0, view.stops.findIndex((s) => s.key === data.start));
        this.buildStrip();
        this.root.dataset.state = "ready";
        this.root.dataset.view = id;
        this.ui.stop.hidden = false;
        this.render();
        if (data.reveal) this.revealSelf();
        if (this.trainedFrom !== undefined) {      // a step this viewer asked for: click → its first stop drawn
          const t0 = this.trainedFrom;
          this.trainedFrom = undefined;
          requestAnimationFrame(() => setTimeout(() => {
            this.root.dataset.trainedMs = (performance.now() - t0).toFixed(1);
            this.root.dataset.trainedCount = String(Number(this.root.dataset.trainedCount || 0) + 1);
          }, 0));
        }
      }).catch((err) => {
        this.ui.stop.hidden = true;
        this.parent.querySelector(".tv-loading").textContent = `The step could not be unpacked: ${err.message}`;
      });
      return;
    }
    if (!this.view) return;
    if (data.start !== this.start) {
      this.start = data.start;
      const i = this.view.stops.findIndex((s) => s.key === data.start);
      if (i >= 0 && i !== this.pos) { this.pos = i; this.render(); }
    }
  }

  // the page scrolls so the viewer starts just below Streamlit's header (.tv's scroll-margin-top)
  revealSelf() {
    const top = this.root.getBoundingClientRect().top;
    const margin = parseFloat(getComputedStyle(this.root).scrollMarginTop) || 0;
    if (Math.abs(top - margin) > 2) this.root.scrollIntoView({ block: "start", behavior: "instant" });
  }

  takeAnswer(answer) {
    if (answer && answer.view === this.viewId && answer !== this.answer &&
        JSON.stringify(answer) !== JSON.stringify(this.answer)) {
      this.answer = answer;
      this.selected = { name: answer.name, index: answer.index };
      this.reveal = true;          // scroll the explanation into view once it is drawn
    }
  }

  // -- moving
  go(pos, event) {
    if (!this.view) return;
    const n = this.view.stops.length;
    pos = Math.max(0, Math.min(n - 1, pos));
    if (pos === this.pos) return;
    this.pos = pos;
    this.render();
    const t0 = event ? event.timeStamp : performance.now();
    // when the stop is on screen: the frame after this one has been painted
    requestAnimationFrame(() => setTimeout(() => {
      this.root.dataset.drawnMs = (performance.now() - t0).toFixed(1);
      this.root.dataset.drawnStop = this.view.stops[this.pos].key;
    }, 0));
  }

  key(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || !this.view) return;
    // keys for a text box, a slider, a list or a group of radios elsewhere on the page are theirs
    const target = e.composedPath()[0];
    if (target instanceof Element && !this.root.contains(target) && (target.isContentEditable ||
        target.closest("input, textarea, select, [role=slider], [role=listbox], [role=combobox], " +
                       "[role=radiogroup], [role=radio], [role=tablist], [role=tab], [role=menu], [role=grid]"))) return;
    const n = this.view.stops.length;
    const moves = { ArrowRight: this.pos + 1, ArrowLeft: this.pos - 1, Home: 0, End: n - 1 };
    if (e.key in moves) {
      e.preventDefault();
      this.go(moves[e.key], e);
    } else if (e.key === "n") {
      e.preventDefault();
      this.train(e);
    } else if (e.key === "?") {
      e.preventDefault();
      this.toggleHelp();
    } else if (e.key === "Escape" && !this.ui.help.hidden) {
      this.toggleHelp();
    }
  }

  toggleHelp() {
    this.ui.help.hidden = !this.ui.help.hidden;
    this.ui.keys.setAttribute("aria-expanded", String(!this.ui.help.hidden));
  }

  train(event) {
    if (this.ui.train.disabled || !this.send) return;
    this.ui.train.classList.add("tv-pending");
    this.trainedFrom = event ? event.timeStamp : performance.now();   // for data-trained-ms (the benchmark)
    this.send("train", Date.now());
  }

  ask(name, index) {
    const same = this.answer && this.answer.name === name && String(this.answer.index) === String(index);
    this.selected = { name, index };
    if (same) { this.renderExplain(); this.paintMarks(); return; }
    this.answer = null;
    this.ui.explain.replaceChildren(el("p", "tv-more", `Working out ${name}[${index.join(", ")}]…`));
    this.paintMarks();
    this.send("cell", { view: this.viewId, stop: this.view.stops[this.pos].key, name, index });
  }

  // -- drawing
  buildStrip() {
    const strip = this.ui.strip;
    strip.replaceChildren();
    this.stripButtons = [];
    for (const phase of this.view.phases) {
      const group = el("div", "tv-phase");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", phase.title);
      group.appendChild(el("span", "", `${phase.icon} ${phase.title.toLowerCase()}`));
      this.view.stops.forEach((s, i) => {
        if (s.phase !== phase.key) return;
        const b = el("button", "", s.key);
        b.type = "button";
        b.title = s.title;
        b.addEventListener("click", (e) => this.go(i, e));
        group.appendChild(b);
        this.stripButtons[i] = b;
      });
      strip.appendChild(group);
    }
  }

  typeset(latex, display = true) {
    if (!this.katex) {
      const raw = el("code", "tv-eq-raw", latex);
      return raw;
    }
    const key = (display ? "D" : "I") + latex;
    if (!this.tex.has(key)) {
      this.tex.set(key, this.katex.katex.renderToString(latex, { displayMode: display, throwOnError: false }));
    }
    const span = el("div", "tv-math");
    span.innerHTML = this.tex.get(key);
    return span;
  }

  render() {
    const view = this.view, stop = view.stops[this.pos], n = view.stops.length;
    const ui = this.ui;
    ui.count.textContent = `Stop ${this.pos + 1} of ${n}`;
    ui.prev.disabled = this.pos === 0;
    ui.next.disabled = this.pos === n - 1;
    this.stripButtons.forEach((b, i) => {
      if (i === this.pos) b.setAttribute("aria-current", "step");
      else b.removeAttribute("aria-current");
    });
    this.root.dataset.stop = stop.key;
    ui.title.textContent = `${view.phases.find((p) => p.key === stop.phase).icon} ${stop.title}`;
    this.renderEquations();
    ui.words.innerHTML = stop.text;            // Python escaped it (ui.trace_viewer.md_html)
    ui.facts.replaceChildren(...(stop.facts || []).map((f) => {
      const d = el("div", "tv-fact");
      d.dataset.fact = f.id;
      if (f.help) d.title = f.help;
      d.append(el("span", "", f.label), el("b", "", f.value));
      return d;
    }));
    ui.rows.classList.toggle("tv-many", stop.rows.length > 1);
    this.figures = [];
    ui.rows.replaceChildren(...stop.rows.map((row) => {
      const r = el("div", "tv-row");
      for (const name of [...row.inputs, ...row.outputs]) r.appendChild(this.figure(name, row));
      return r;
    }));
    this.paint();
    this.renderExplain();
  }

  renderEquations() {
    this.ui.eqs.replaceChildren(...this.view.stops[this.pos].equations.map((t) => this.typeset(t)));
  }

  figure(name, row) {
    const q = this.view.quantities[name];
    const fig = el("figure", "tv-fig");
    const role = row.outputs.includes(name) ? "output" : "input";
    fig.dataset.name = name;
    fig.dataset.role = role;
    fig.style.flex = `${row.weights[name] || 1} 1 0`;
    const cap = el("figcaption");
    cap.title = q.about;
    cap.append(el("b", "", name), ` ${q.shape_text} `);
    if (role === "input") cap.append(el("i", "", "input"));
    fig.appendChild(cap);
    const vector = q.shape.length === 1;
    if (vector && q.per_sample) fig.classList.add("tv-column");
    else if (vector) fig.classList.add("tv-strip1");
    const plot = el("div", "tv-plot");
    if (q.rows) plot.appendChild(el("span", "tv-ylab", q.rows));
    const box = el("div", "tv-cv");
    const canvas = el("canvas");
    const hover = el("div", "tv-mark tv-hover"), sel = el("div", "tv-mark tv-sel");
    box.append(canvas, hover, sel);
    plot.appendChild(box);
    fig.appendChild(plot);
    if (q.cols && !(vector && q.per_sample)) fig.appendChild(el("div", "tv-xlab", q.cols));
    const scale = el("div", "tv-scale");
    const bar = el("canvas");
    bar.width = 64; bar.height = 1;
    if (q.scale !== "labels") scale.append(el("span", "", q.lo_text), bar, el("span", "", q.hi_text));
    else scale.append(el("span", "", "digit 0"), bar, el("span", "", "9"));
    fig.appendChild(scale);
    fig.appendChild(el("div", "tv-stats", q.stats_text));
    const f = { name, q, canvas, box, hover, sel, bar };
    this.figures.push(f);
    canvas.addEventListener("mousemove", (e) => this.hover(f, e));
    canvas.addEventListener("mouseleave", () => { hover.style.display = "none"; });
    canvas.addEventListener("click", (e) => {
      const c = this.cellAt(f, e);
      if (c) this.ask(name, c.index);
    });
    return fig;
  }

  image(name) {
    if (!this.bitmaps.has(name)) {
      this.bitmaps.set(name, bitmap(this.view.quantities[name], this.arrays[name], this.luts));
    }
    return this.bitmaps.get(name);
  }

  paint() {
    if (!this.figures) return;
    const dpr = window.devicePixelRatio || 1;
    for (const f of this.figures) {
      const w = f.box.clientWidth, h = f.box.clientHeight;
      if (!w || !h) continue;
      const img = this.image(f.name);
      f.canvas.width = Math.round(w * dpr);
      f.canvas.height = Math.round(h * dpr);
      const ctx = f.canvas.getContext("2d");
      // blocks when a cell is bigger than a pixel; averaged when many cells share one (X, W1)
      ctx.imageSmoothingEnabled = img.cols > f.canvas.width || img.rows > f.canvas.height;
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(img.canvas, 0, 0, f.canvas.width, f.canvas.height);
      const bctx = f.bar.getContext("2d");
      const table = this.luts[f.q.scale], n = table.length / 3;
      for (let x = 0; x < f.bar.width; x++) {
        const i = Math.round((x / (f.bar.width - 1)) * (n - 1)) * 3;
        bctx.fillStyle = `rgb(${table[i]},${table[i + 1]},${table[i + 2]})`;
        bctx.fillRect(x, 0, 1, 1);
      }
    }
    this.paintMarks();
  }

  // (rows, cols) of the image and the cell under the mouse
  cellAt(f, e) {
    const img = this.image(f.name);
    const r = f.canvas.getBoundingClientRect();
    const col = Math.floor(((e.clientX - r.left) / r.width) * img.cols);
    const row = Math.floor(((e.clientY - r.top) / r.height) * img.rows);
    if (row < 0 || col < 0 || row >= img.rows || col >= img.cols) return null;
    const index = f.q.shape.length === 2 ? [row, col] : [f.q.per_sample ? row : col];
    return { row, col, index, flat: row * img.cols + col };
  }

  place(mark, f, row, col) {
    const img = this.image(f.name);
    const w = f.box.clientWidth / img.cols, h = f.box.clientHeight / img.rows;
    const mw = Math.max(w, 6), mh = Math.max(h, 6);
    mark.style.left = `${col * w + w / 2 - mw / 2}px`;
    mark.style.top = `${row * h + h / 2 - mh / 2}px`;
    mark.style.width = `${mw}px`;
    mark.style.height = `${mh}px`;
    mark.style.display = "block";
  }

  hover(f, e) {
    const c = this.cellAt(f, e);
    if (!c) return;
    const arr = this.arrays[f.name];
    const text = numberText(arr.values[c.flat], arr.dtype);
    this.place(f.hover, f, c.row, c.col);
    const q = f.q, ro = this.ui.readout;
    const where = q.shape.length === 2
      ? `${q.rows || "row"} = ${c.row}, ${q.cols || "column"} = ${c.col}`
      : `${(q.per_sample ? q.rows : q.cols) || "index"} = ${c.index[0]}`;
    ro.textContent = `${f.name}[${c.index.join(", ")}] = ${text}   (${where}) — click to see how it was computed`;
    ro.dataset.name = f.name;
    ro.dataset.index = c.index.join(",");
    ro.dataset.value = text;
  }

  paintMarks() {
    if (!this.figures) return;
    for (const f of this.figures) {
      const s = this.selected;
      if (s && s.name === f.name) {
        const [row, col] = f.q.shape.length === 2 ? s.index : (f.q.per_sample ? [s.index[0], 0] : [0, s.index[0]]);
        this.place(f.sel, f, row, col);
      } else {
        f.sel.style.display = "none";
      }
    }
  }

  renderExplain() {
    const box = this.ui.explain, a = this.answer;
    const stop = this.view.stops[this.pos];
    if (!a) {
      if (!this.selected) box.replaceChildren();
      return;
    }
    const drawn = stop.rows.some((r) => r.inputs.includes(a.name) || r.outputs.includes(a.name));
    box.dataset.name = a.name;
    box.dataset.index = a.index.join(",");
    if (!drawn) {
      box.replaceChildren(el("p", "tv-more", `${a.cell ?? a.name} is explained at the stops that show ${a.name}.`));
      return;
    }
    if (a.error) {
      box.replaceChildren(el("p", "tv-error", a.error));
      return;
    }
    box.dataset.value = a.value === null ? "" : String(a.value);
    box.dataset.total = a.total === null ? "" : String(a.total);
    const parts = [el("h4", "", `How ${a.cell} was computed`), this.typeset(a.rule), this.typeset(a.substituted)];
    const note = el("p");
    note.innerHTML = a.note;                  // Python escaped it
    parts.push(note);
    if (a.terms.length) {
      const t = el("table", "tv-terms");
      const head = el("tr");
      for (const h of ["#", "term", "numbers", "contribution"]) head.appendChild(el("th", "", h));
      t.appendChild(head);
      a.terms.forEach((term, i) => {
        const tr = el("tr");
        tr.append(el("td", "", String(i + 1)), el("td", "", term.term), el("td", "tv-num", term.numbers),
                  el("td", "tv-num", term.contribution));
        t.appendChild(tr);
      });
      parts.push(t);
      if (a.more) parts.push(el("p", "tv-more", a.more));
    }
    const check = el("table", "tv-check");
    for (const row of a.check) {
      const tr = el("tr");
      tr.append(el("td", "", row.label), el("td", "tv-num", row.value));
      check.appendChild(tr);
    }
    parts.push(check, el("p", "tv-verdict", a.verdict));
    box.replaceChildren(...parts);
    if (this.reveal) {
      this.reveal = false;
      parts[1].scrollIntoView({ block: "nearest", behavior: "smooth" });   // the heading and the rule
    }
  }
}
