// The MusicVAE looper: one Web Audio drum loop per page that survives Streamlit reruns.
//
// The audio lives in a window-level singleton (window.__musicvaeLooper), not in the element:
// each mount of the component (a rerun, new data, a remount with the same key) only hands the
// singleton its data.  A look-ahead scheduler on the audio clock (a 25 ms timer, 1 s ahead: a
// busy page's main thread may stall that long; more after a late tick) starts one
// AudioBufferSourceNode per hit from a kit of one-shot samples rendered by FluidSynth on the
// server.  A new groove waits as "pending" and takes over at the next bar line (or beat): what
// was scheduled past that line is unscheduled and scheduled again ("rewind"), so the switch and a
// tempo change need not wait for the look-ahead; the step counter and the clock run on, so
// nothing restarts and nothing stops.
//
// A bank (every cell of the Grid, every step of the Interpolate strip as a one-row grid (nav.rows/cols),
// sent once per content) lets the browser switch on the input event
// itself: an arrow key, a click on the grid chart or the blend pad's puck picks the banked groove at
// once (it waits as "pending" like any other), and the command still goes to Python.  Each switch made
// here is remembered by the tag the server will answer with ("cell:2,3", "puck:0.300,0.800"); data
// carrying an older tag than the latest local switch is a rerun answering an older input and is not
// taken (no flicker back), the latest tag confirms (the same groove: nothing changes), and a tag the
// browser never asked for is the server deciding otherwise: it wins.  Sliders work the same way when
// the app banks the grooves of their neighbouring values (nav.sliders): the slider's input event (or
// its aria-valuenow) switches before the rerun.  N and the "New seed" button work so too when the bank
// holds the next seed's groove (nav.next: [bankKey, tag, buttonKey]).
//
// For tests and measurements the singleton keeps ring buffers:
//   log      : one entry per scheduled 16th step {audioTime, step, pos, patternId, dur, hits, times, vels}
//              (times: the start time of each hit started, after offsets and clamping; vels: its velocity)
//   switches : {audioTime, perfTime, pos, from, to}         (a pending groove took over)
//   arrivals : {perfTime, patternId, kind, source, tag}     (a groove reached the player: source "server",
//              or "bank" for a local switch on an input event; kind immediate/pending/cancel/queue)
//   answers  : {perfTime, tag, patternId, verdict}          (server data matched against local switches:
//              verdict "confirm", "stale" (not taken) or "override")
// and currentStep(), state(), level().

const VERSION = 11;
const LOOKAHEAD = 1.0; // seconds scheduled ahead of the audio clock: a busy page's main thread may stall this long
const MAX_LOOKAHEAD = 4.0; // a page that stalls longer earns more (or is told to expect it), up to this
const SAFETY = 0.04; // a rewind never touches what starts sooner than this
const TICK_MS = 25; // scheduler period
const START_DELAY = 0.06; // first step after pressing play
const LOG_CAP = 8192;
const STEPS_PER_BAR = 16;
const STEPS_PER_BEAT = 4;
const HATS = new Set([2, 3]); // closed and open hi-hat share FluidSynth's exclusive class: one cuts the other
const OPEN_HAT = 3;
const EXPECT_MS = 6000; // a local switch the server has not answered within this long is forgotten
const BANKS_KEPT = 6;

function ring(array, entry) {
  array.push(entry);
  if (array.length > LOG_CAP + 1024) array.splice(0, 1024);
}

function dataUrlBytes(url) {
  const b64 = url.slice(url.indexOf(",") + 1);
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes.buffer;
}

function makeTimer(callback) {
  // A worker's timer keeps ticking when the main thread's timers are throttled (background tab).
  try {
    const source = "let id=null;onmessage=(e)=>{if(e.data==='start'){if(id===null)id=setInterval(()=>postMessage(0)," +
      TICK_MS + ");}else{clearInterval(id);id=null;}};";
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const worker = new Worker(url);
    worker.onmessage = callback;
    return { start: () => worker.postMessage("start"), stop: () => worker.postMessage("stop"), kind: "worker" };
  } catch (error) {
    let id = null;
    return {
      start: () => { if (id === null) id = setInterval(callback, TICK_MS); },
      stop: () => { clearInterval(id); id = null; },
      kind: "interval",
    };
  }
}

class Looper {
  constructor() {
    this.version = VERSION;
    this.ctx = null;
    this.master = null;
    this.analyser = null;
    this.kits = new Map(); // id -> {layers, buffers[c][l]}
    this.kitLoading = new Map(); // id -> Promise
    this.kitId = null;
    this.kitRequested = new Set();
    this.kitLoadedAt = null; // performance.now() when the first kit was decoded (page load -> playable)
    this.pattern = null; // {id, steps, events: [[cls, vel, off], ...] per step}
    this.pending = null; // {pattern, at}
    this.queue = null; // {id, patterns, startBar}: a path the loop follows, one groove per bar
    this.undo = []; // switches scheduled ahead: {pos, prev, next, at, queued}, undone by a rewind
    this.qpm = 120;
    this.playing = false;
    this.startTime = 0;
    this.nextTime = 0;
    this.pos = 0;
    this.active = []; // {src, gain, cls, start, end}
    this.log = [];
    this.switches = [];
    this.arrivals = [];
    this.answers = [];
    this.banks = new Map(); // id -> Map(key -> compiled groove)
    this.bankId = null;
    this.bankAsked = new Set();
    this.nav = null; // {n, row, col, chart, roll}: the Grid's cells as bank keys "cell:r,c"; {sliders}; {next}
    this.cell = null; // [row, col] the browser believes is chosen (moved at once by keys and clicks)
    this.tag = null; // what the server last said it plays
    this.expect = []; // [{tag, at}] local switches not answered yet, oldest first (tag null: not sent yet)
    this.switchAt = "bar";
    this.onChartClick = null;
    this.sliderObserver = null;
    this.onSliderInput = null;
    this.onNextClick = null;
    this.events = []; // play/stop/resync
    this.views = new Set();
    this.host = null; // the latest mounted instance: {setStateValue, setTriggerValue, keyboard}
    this.lastStep = -1;
    this.lookahead = LOOKAHEAD;
    this.timer = makeTimer(() => this.tick());
    this.frame = null;
    this.stopTimer = null;
    this.onKey = (event) => this.key(event);
    document.addEventListener("keydown", this.onKey);
  }

  // -- audio graph ------------------------------------------------------------------------
  ensureContext() {
    if (this.ctx) return this.ctx;
    const Context = window.AudioContext || window.webkitAudioContext;
    this.ctx = new Context({ latencyHint: "interactive" });
    this.master = this.ctx.createGain();
    this.master.gain.value = 0.8;
    const limiter = this.ctx.createDynamicsCompressor(); // overlapping hits must not clip
    limiter.threshold.value = -3;
    limiter.knee.value = 0;
    limiter.ratio.value = 20;
    limiter.attack.value = 0.002;
    limiter.release.value = 0.1;
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 2048;
    this.master.connect(limiter);
    limiter.connect(this.analyser);
    this.analyser.connect(this.ctx.destination);
    return this.ctx;
  }

  level() {
    // RMS of the last ~46 ms of output: lets a test check that sound comes out
    if (!this.analyser) return 0;
    const data = new Float32Array(this.analyser.fftSize);
    this.analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const x of data) sum += x * x;
    return Math.sqrt(sum / data.length);
  }

  loadKit(kit) {
    if (this.kits.has(kit.id)) return Promise.resolve(this.kits.get(kit.id));
    if (this.kitLoading.has(kit.id)) return this.kitLoading.get(kit.id);
    const ctx = this.ensureContext();
    const promise = Promise.all(kit.samples.map((row) => Promise.all(
      row.map((url) => ctx.decodeAudioData(dataUrlBytes(url)))))).then((buffers) => {
      const loaded = { id: kit.id, layers: kit.layers, buffers };
      this.kits.set(kit.id, loaded);
      this.kitLoading.delete(kit.id);
      if (this.kitLoadedAt === null) this.kitLoadedAt = performance.now();
      return loaded;
    });
    this.kitLoading.set(kit.id, promise);
    return promise;
  }

  get kit() {
    return this.kits.get(this.kitId) || null;
  }

  // -- data from Python -------------------------------------------------------------------
  receive(data, host) {
    const now = performance.now();
    this.host = host;
    if (typeof data.qpm === "number" && data.qpm > 0) {
      const qpm = Math.min(400, Math.max(20, data.qpm));
      if (qpm !== this.qpm) {
        this.qpm = qpm;
        if (this.playing) this.rewind(1); // the new tempo from the next 16th, not after the look-ahead
      }
    }
    if (data.kit_id) {
      this.kitId = data.kit_id;
      if (data.kit) {
        this.loadKit(data.kit).then(() => host.setStateValue("kit", data.kit.id))
          .catch((error) => console.error("musicvae looper: kit decode failed", error));
      } else if (!this.kits.has(data.kit_id) && !this.kitLoading.has(data.kit_id) && !this.kitRequested.has(data.kit_id)) {
        this.kitRequested.add(data.kit_id); // Python believes we hold it (e.g. a reconnect): ask once
        host.setStateValue("kit", null);
      }
    }
    if (typeof data.lookahead === "number" && data.lookahead > this.lookahead) {
      // the app expects long stalls ahead (a fresh server's first full page): never shrinks afterwards
      this.lookahead = Math.min(MAX_LOOKAHEAD, data.lookahead);
    }
    this.switchAt = data.switch_at === "beat" ? "beat" : "bar";
    this.receiveBank(data, host);
    const tag = typeof data.tag === "string" ? data.tag : null;
    const stale = this.answer(tag, data.pattern && data.pattern.id, now);
    if (stale) { // a rerun answering an older input: what the browser picked since stays
      if (data.autoplay && !this.playing && !this.autoplayed) { this.autoplayed = true; this.play(); }
      this.render();
      return;
    }
    this.tag = tag;
    if (this.nav && this.nav.n > 0 && !this.expect.length) this.cell = [this.nav.row | 0, this.nav.col | 0];
    const queue = data.queue;
    if (queue && Array.isArray(queue.patterns) && queue.patterns.length) {
      if (!this.queue || this.queue.id !== queue.id) { // a path: one groove per bar, in a loop
        this.queue = { id: String(queue.id), patterns: queue.patterns.map((p) => this.compile(p)), startBar: null };
        ring(this.arrivals, { perfTime: now, patternId: "queue:" + queue.id, kind: "queue", source: "server", tag });
        this.rewind(STEPS_PER_BAR);
      }
    } else if (this.queue) {
      this.queue = null;
    }
    const pattern = data.pattern;
    if (pattern && Array.isArray(pattern.events) && pattern.steps > 0) {
      const roll = typeof data.roll === "string" ? data.roll : "";
      this.take(pattern, roll, "server", tag, now);
    }
    if (data.autoplay && !this.playing && !this.autoplayed) {
      this.autoplayed = true;
      this.play();
    }
    this.render();
  }

  // The groove that plays next: the same one (nothing changes), the one already waiting, or a new one
  // that waits for the next bar (beat) line.  ``pattern``: the data from Python, or a compiled groove.
  take(pattern, roll, source, tag, now) {
    const switchAt = this.switchAt;
    if (this.pattern && pattern.id === this.pattern.id) {
      this.pattern.roll = roll; // the same groove, shown in another roll
      if (this.pending) ring(this.arrivals, { perfTime: now, patternId: pattern.id, kind: "cancel", source, tag });
      this.pending = null; // back to what plays: drop the queued groove
    } else if (this.pending && this.pending.pattern.id === pattern.id && this.pending.at === switchAt) {
      this.pending.pattern.roll = roll;
    } else {
      const compiled = pattern.compiled ? { ...pattern } : this.compile(pattern);
      compiled.roll = roll;
      if (!this.pattern || !this.playing) {
        this.pattern = compiled;
        this.pending = null;
        ring(this.arrivals, { perfTime: now, patternId: pattern.id, kind: "immediate", source, tag });
      } else {
        this.pending = { pattern: compiled, at: switchAt };
        this.rewind(switchAt === "beat" ? STEPS_PER_BEAT : STEPS_PER_BAR);
        ring(this.arrivals, { perfTime: now, patternId: pattern.id, kind: "pending", source, tag });
      }
    }
  }

  // -- the bank: switching on the input event, before the rerun ---------------------------------
  receiveBank(data, host) {
    const bank = data.bank;
    if (bank && bank.id && bank.patterns && !this.banks.has(bank.id)) {
      const grooves = new Map();
      for (const [key, pattern] of Object.entries(bank.patterns)) {
        if (pattern && Array.isArray(pattern.events) && pattern.steps > 0) grooves.set(key, this.compile(pattern));
      }
      this.banks.set(String(bank.id), grooves);
      while (this.banks.size > BANKS_KEPT) this.banks.delete(this.banks.keys().next().value);
    }
    this.bankId = typeof data.bank_id === "string" ? data.bank_id : null;
    this.nav = this.bankId && data.nav && typeof data.nav === "object" ? data.nav : null;
    if (this.bankId && !this.banks.has(this.bankId) && !this.bankAsked.has(this.bankId)) {
      this.bankAsked.add(this.bankId); // Python believes we hold it (e.g. a reconnect): ask once
      try { host.setStateValue("bank_missing", this.bankId); } catch (error) { /* unmounted */ }
    }
    this.wireChart();
    this.watchSliders();
    this.wireNext();
  }

  // N or the "New seed" button: the next seed's groove (decoded ahead by the server) at once; the
  // command (or the button's own click) still goes to Python, whose rerun answers with nav.next's tag.
  nextGroove() {
    const next = this.nav && Array.isArray(this.nav.next) ? this.nav.next : null;
    if (!next) return false;
    return this.switchLocal(String(next[0]), typeof next[1] === "string" ? next[1] : null, "bank");
  }

  wireNext() {
    if (this.onNextClick || !this.nav || !Array.isArray(this.nav.next)) return;
    this.onNextClick = (event) => {
      const next = this.nav && Array.isArray(this.nav.next) ? this.nav.next : null;
      if (!next || typeof next[2] !== "string" || !event.target || !event.target.closest) return;
      if (event.target.closest(".st-key-" + CSS.escape(next[2]) + " button")) this.nextGroove();
    };
    document.addEventListener("click", this.onNextClick, true);
  }

  banked(key) {
    const grooves = this.bankId ? this.banks.get(this.bankId) : null;
    return (grooves && grooves.get(key)) || null;
  }

  // Server data against the local switches not answered yet: true when it answers an older input.
  answer(tag, patternId, now) {
    if (!this.expect.length) return false;
    if (now - this.expect[this.expect.length - 1].at > EXPECT_MS) this.expect = []; // never answered
    const index = tag === null ? -1 : this.expect.findLastIndex((e) => e.tag === tag);
    let verdict;
    if (!this.expect.length) verdict = "override";
    else if (index >= 0 && index < this.expect.length - 1) {
      this.expect.splice(0, index); // what came before it is answered too
      verdict = "stale";
    } else {
      verdict = index >= 0 ? "confirm" : "override";
      this.expect = [];
    }
    ring(this.answers, { perfTime: now, tag, patternId, verdict });
    return verdict === "stale";
  }

  // The browser switches to the banked groove ``key`` now; ``tag`` is what the server will answer
  // with (null: not sent yet, see expectTag).  Returns false when the bank does not hold it.
  switchLocal(key, tag, source) {
    const groove = this.banked(key);
    if (!groove) return false;
    const now = performance.now();
    if (!this.expect.length) this.expect.push({ tag: this.tag, at: now }); // what the server said before
    const last = this.expect[this.expect.length - 1];
    if (last.tag === tag && (tag !== null || this.expect.length > 1)) last.at = now; // the same answer awaited
    else this.expect.push({ tag, at: now });
    if (this.queue) this.queue = null; // a path stops when a cell is picked
    const roll = this.nav && typeof this.nav.roll === "string" ? this.nav.roll : "";
    this.take(groove, roll, source, tag, now);
    this.render();
    return true;
  }

  // The next server answer for this input will carry ``tag`` (the pad sends its position; it never
  // sends the same value twice in a row, which would bring no rerun).
  expectTag(tag) {
    const now = performance.now();
    const last = this.expect[this.expect.length - 1];
    if ((this.expect.length > 1 && last.tag === null) || (last && last.tag === tag)) {
      last.tag = tag;
      last.at = now;
    } else if (this.expect.length) {
      this.expect.push({ tag, at: now });
    }
  }

  // An arrow key in the grid (nav.n x nav.n, or nav.rows x nav.cols); in a strip of one row (the
  // Interpolate strip) up and down step left and right, as Python's "up"/"down" do there.
  moveCell(dr, dc) {
    if (!this.nav || !(this.nav.n > 0) || !this.cell) return null;
    const rows = (this.nav.rows || this.nav.n) | 0;
    const cols = (this.nav.cols || this.nav.n) | 0;
    if (rows === 1 && dc === 0) [dr, dc] = [0, dr];
    const row = Math.min(rows, Math.max(1, this.cell[0] + dr));
    const col = Math.min(cols, Math.max(1, this.cell[1] + dc));
    return this.pickCell(row, col, "bank") ? `cell:${row},${col}` : null;
  }

  pickCell(row, col, source) {
    const tag = `cell:${row},${col}`;
    if (!this.switchLocal(tag, tag, source)) return false;
    this.cell = [row, col];
    const label = this.nav && typeof this.nav.label === "string" ? this.nav.label : "";
    if (label) { // the player's label says which cell at once (the rerun writes the same)
      const text = label.replace("{row}", String(row)).replace("{col}", String(col));
      for (const view of this.views) view.label.textContent = text;
    }
    return true;
  }

  // The blend pad's puck at (x across, y down): the nearest cell of the grid, at once.
  puck(x, y) {
    if (!this.nav || !(this.nav.n > 0)) return false;
    const n = this.nav.n | 0;
    const col = Math.round(Math.min(1, Math.max(0, x)) * (n - 1)) + 1;
    const row = Math.round(Math.min(1, Math.max(0, y)) * (n - 1)) + 1;
    const key = `cell:${row},${col}`;
    const groove = this.banked(key);
    if (!groove) return false;
    const next = this.pending ? this.pending.pattern : this.pattern;
    if (next && next.id === groove.id && this.expect.length) return true; // already there
    return this.switchLocal(key, null, "bank");
  }

  // A click on a cell of the grid chart (plotly_click on its click targets, customdata [row, col, index]).
  wireChart() {
    if (!this.nav || !this.nav.chart || this.onChartClick) return;
    this.onChartClick = (event) => {
      const nav = this.nav;
      if (!nav || !nav.chart) return;
      const inside = event.target && event.target.closest && event.target.closest(".st-key-" + CSS.escape(nav.chart));
      const plot = inside && event.target.closest(".js-plotly-plot");
      if (!plot || plot.__mvBank || typeof plot.on !== "function") return;
      plot.__mvBank = true; // plotly's own click event: the point Streamlit's selection will hold
      plot.on("plotly_click", (click) => {
        if (!this.nav) return;
        for (const point of (click && click.points) || []) {
          const custom = point.customdata;
          const row = custom && (Array.isArray(custom) ? custom[0] : custom["0"]);
          const col = custom && (Array.isArray(custom) ? custom[1] : custom["1"]);
          if (row > 0 && col > 0) {
            // the command too: plotly's selection alone may not move the server's cell (a click on
            // the point it still holds selected unselects it)
            if (this.pickCell(row | 0, col | 0, "bank")) this.send(`cell:${row | 0},${col | 0}`);
            return;
          }
        }
      });
    };
    // wired on the first pointer down over the chart: plotly's click event comes after it
    document.addEventListener("pointerdown", this.onChartClick, true);
  }

  // Sliders whose neighbouring values are banked (nav.sliders: [{key, points: [[value, bankKey, tag]]}]):
  // when a slider inside .st-key-<key> that holds the focus moves (an arrow key on it changes it before
  // any rerun: its input event, or its aria-valuenow / aria-valuetext), the groove for the new value
  // comes from the bank at once; the rerun answers with the point's tag.
  watchSliders() {
    if (this.onSliderInput || !this.nav || !Array.isArray(this.nav.sliders) || !this.nav.sliders.length) return;
    const moved = (el) => {
      const sliders = this.nav && Array.isArray(this.nav.sliders) ? this.nav.sliders : [];
      if (!sliders.length || !el || !el.closest) return;
      const text = el.tagName === "INPUT" ? el.value : (el.getAttribute("aria-valuenow") ?? el.getAttribute("aria-valuetext"));
      const value = Number(text);
      if (text === null || text === "" || !Number.isFinite(value)) return;
      const active = document.activeElement;
      for (const slider of sliders) {
        const box = slider && slider.key ? el.closest(".st-key-" + CSS.escape(slider.key)) : null;
        // only a move of the slider the user holds (keys and drags focus its input): a slider drawn
        // again (a stale copy while a mode's page is replaced, a remount) reports its value too, and an
        // old value from it would switch to a groove the server never answers
        if (!box || !active || !box.contains(active)) continue;
        const points = Array.isArray(slider.points) ? slider.points : [];
        const scale = Math.max(1, ...points.map((p) => Math.abs(Number(p[0])) || 0));
        const point = points.find((p) => Math.abs(Number(p[0]) - value) <= 1e-6 * scale);
        const tag = point && typeof point[2] === "string" ? point[2] : null;
        const awaited = this.expect.length ? this.expect[this.expect.length - 1].tag : this.tag;
        if (tag !== null && tag === awaited) continue; // there already: a rerun set the slider's attributes again
        if (point && this.switchLocal(String(point[1]), tag, "bank")) {
          const cell = /^cell:(\d+),(\d+)$/.exec(String(point[1])); // a slider over a grid's cells (the strip's)
          if (cell) this.cell = [Number(cell[1]), Number(cell[2])];
        }
      }
    };
    this.onSliderInput = (event) => moved(event.target);
    document.addEventListener("input", this.onSliderInput, true);
    if (typeof MutationObserver === "function" && document.body) {
      this.sliderObserver = new MutationObserver((records) => {
        for (const record of records) {
          const el = record.target;
          if (el.getAttribute("role") === "slider" || (el.tagName === "INPUT" && el.type === "range")) moved(el);
        }
      });
      // react-aria's slider (Streamlit's) moves on its own key handling: no input event, but a new
      // aria-valuetext on its <input type=range>; other sliders carry aria-valuenow
      this.sliderObserver.observe(document.body, { subtree: true, attributes: true,
        attributeFilter: ["aria-valuenow", "aria-valuetext"] });
    }
  }

  compile(pattern) {
    const events = Array.from({ length: pattern.steps }, () => []);
    for (const [step, cls, vel, off] of pattern.events) {
      if (step < 0 || step >= pattern.steps) continue;
      const offset = Math.max(-0.5, Math.min(0.5, Number(off) || 0));
      events[step].push([cls | 0, Math.max(1, Math.min(127, vel | 0)), offset]);
    }
    return { id: String(pattern.id), steps: pattern.steps | 0, events, compiled: true };
  }

  // -- transport ---------------------------------------------------------------------------
  play() {
    const ctx = this.ensureContext();
    if (ctx.state !== "running") ctx.resume();
    if (this.playing) return;
    if (this.pending) {
      this.pattern = this.pending.pattern;
      this.pending = null;
    }
    this.undo = [];
    if (this.queue) this.queue.startBar = null;
    this.playing = true;
    this.pos = 0;
    this.startTime = ctx.currentTime + START_DELAY;
    this.nextTime = this.startTime;
    ring(this.events, { kind: "play", audioTime: this.startTime, perfTime: performance.now() });
    this.timer.start();
    this.tick();
    this.animate();
    this.report();
  }

  stop() {
    if (!this.playing) return;
    this.playing = false;
    this.timer.stop();
    const now = this.ctx.currentTime;
    for (const hit of this.active) this.fade(hit, now);
    this.active = [];
    ring(this.events, { kind: "stop", audioTime: now, perfTime: performance.now() });
    this.lastStep = -1;
    this.render();
    this.report();
  }

  toggle() {
    if (this.playing) this.stop();
    else this.play();
  }

  report() {
    if (this.host) {
      try { this.host.setStateValue("playing", this.playing); } catch (error) { /* unmounted */ }
    }
  }

  stepSeconds() {
    return 60 / this.qpm / STEPS_PER_QUARTER_NOTE;
  }

  // -- the scheduler -----------------------------------------------------------------------
  tick() {
    if (!this.playing || !this.ctx) return;
    const now = this.ctx.currentTime;
    if (this.nextTime < now + 0.02 && this.lookahead < MAX_LOOKAHEAD) {
      // the tick came late (the main thread was busy): schedule further ahead from now on
      this.lookahead = Math.min(MAX_LOOKAHEAD, this.lookahead * 2);
      ring(this.events, { kind: "lookahead", audioTime: now, lookahead: this.lookahead, perfTime: performance.now() });
    }
    if (this.nextTime < now - this.stepSeconds()) {
      // the timer starved (a frozen tab): skip what is past instead of firing it all at once
      ring(this.events, { kind: "resync", audioTime: now, late: now - this.nextTime, perfTime: performance.now() });
      while (this.nextTime < now) {
        this.nextTime += this.stepSeconds();
        this.pos += 1;
      }
    }
    const horizon = now + this.lookahead;
    while (this.nextTime < horizon) this.scheduleStep(this.nextTime);
    this.prune(now);
  }

  // Steps are scheduled up to LOOKAHEAD ahead; a new groove (or tempo) must not wait for that.
  // Unschedule everything from the next bar (beat, 16th) line that is still far enough away, and
  // schedule again from there: the line's time and the step count do not change, so nothing gaps.
  rewind(unit) {
    if (!this.playing || !this.ctx) return;
    const limit = this.ctx.currentTime + SAFETY;
    let target = null;
    for (let i = this.log.length - 1; i >= 0; i--) {
      const entry = this.log[i];
      if (entry.audioTime < limit) break;
      if (entry.pos % unit === 0) target = entry;
    }
    if (!target) return;
    while (this.log.length && this.log[this.log.length - 1].pos >= target.pos) this.log.pop();
    while (this.switches.length && this.switches[this.switches.length - 1].pos >= target.pos) this.switches.pop();
    while (this.undo.length && this.undo[this.undo.length - 1].pos >= target.pos) {
      const undone = this.undo.pop(); // back to what played before; the groove waits again (unless a newer one does)
      this.pattern = undone.prev;
      if (!this.pending && !undone.queued) this.pending = { pattern: undone.next, at: undone.at };
    }
    const keep = [];
    for (const hit of this.active) {
      if (hit.start >= target.audioTime - 1e-6) {
        try { hit.src.stop(); hit.src.disconnect(); } catch (error) { /* gone */ }
      } else {
        keep.push(hit);
      }
    }
    this.active = keep;
    this.pos = target.pos;
    this.nextTime = target.audioTime;
    ring(this.events, { kind: "rewind", audioTime: this.ctx.currentTime, to: target.audioTime, pos: target.pos,
      perfTime: performance.now() });
    this.tick();
  }

  remember(entry) {
    this.undo.push(entry);
    if (this.undo.length > 64) this.undo.splice(0, this.undo.length - 64);
  }

  scheduleStep(time) {
    if (this.pending) {
      const unit = this.pending.at === "beat" ? STEPS_PER_BEAT : STEPS_PER_BAR;
      if (this.pos % unit === 0) {
        const from = this.pattern ? this.pattern.id : null;
        this.remember({ pos: this.pos, prev: this.pattern, next: this.pending.pattern, at: this.pending.at });
        this.pattern = this.pending.pattern;
        this.pending = null;
        ring(this.switches, { audioTime: time, perfTime: performance.now(), pos: this.pos, from, to: this.pattern.id });
      }
    }
    if (this.queue && this.pos % STEPS_PER_BAR === 0) {
      const bar = Math.floor(this.pos / STEPS_PER_BAR);
      if (this.queue.startBar === null) this.queue.startBar = bar;
      const count = this.queue.patterns.length;
      const next = this.queue.patterns[(((bar - this.queue.startBar) % count) + count) % count];
      if (!this.pattern || next.id !== this.pattern.id) {
        ring(this.switches, { audioTime: time, perfTime: performance.now(), pos: this.pos,
          from: this.pattern ? this.pattern.id : null, to: next.id, queue: this.queue.id });
        this.remember({ pos: this.pos, prev: this.pattern, next, at: "bar", queued: true });
        this.pattern = next;
      }
    }
    const dur = this.stepSeconds();
    const times = [];
    const vels = [];
    let step = -1;
    if (this.pattern) {
      step = this.pos % this.pattern.steps;
      const kit = this.kit;
      for (const [cls, vel, off] of this.pattern.events[step]) {
        // a hit pushed early never sounds before the loop started (nor in the past)
        const at = Math.max(time + off * dur, this.startTime, this.ctx.currentTime);
        if (kit && this.hit(kit, cls, vel, at)) {
          times.push(at);
          vels.push(vel);
        }
      }
    }
    ring(this.log, { audioTime: time, step, pos: this.pos, patternId: this.pattern ? this.pattern.id : null, dur,
      hits: times.length, times, vels });
    this.nextTime = time + dur;
    this.pos += 1;
  }

  hit(kit, cls, vel, when) {
    const row = kit.buffers[cls];
    if (!row) return false;
    // the softest layer at least as loud as the hit, scaled down (the loudest one for the hardest hits)
    let layer = kit.layers.length - 1;
    for (let i = kit.layers.length - 1; i >= 0; i--) if (kit.layers[i] >= vel) layer = i;
    const ctx = this.ctx;
    const src = ctx.createBufferSource();
    src.buffer = row[layer];
    const gain = ctx.createGain();
    gain.gain.value = Math.min(2.5, Math.pow(vel / kit.layers[layer], 2));
    src.connect(gain);
    gain.connect(this.master);
    if (HATS.has(cls)) {
      for (const other of this.active) {
        if (other.cls === OPEN_HAT && other.start < when && other.end > when) this.fade(other, when);
      }
    }
    src.start(when);
    this.active.push({ src, gain, cls, start: when, end: when + src.buffer.duration });
    return true;
  }

  fade(hit, at) {
    try {
      const t = Math.max(at, this.ctx.currentTime);
      hit.gain.gain.cancelScheduledValues(t);
      hit.gain.gain.setValueAtTime(hit.gain.gain.value, t);
      hit.gain.gain.linearRampToValueAtTime(0, t + 0.015);
      hit.src.stop(t + 0.02);
      hit.end = t + 0.02;
    } catch (error) { /* already stopped */ }
  }

  prune(now) {
    if (this.active.length > 256) this.active = this.active.filter((hit) => hit.end > now);
  }

  // -- what plays now ------------------------------------------------------------------------
  current() {
    if (!this.playing || !this.ctx) return null;
    const now = this.ctx.currentTime;
    for (let i = this.log.length - 1; i >= 0 && i >= this.log.length - 64; i--) {
      if (this.log[i].audioTime <= now) return this.log[i];
    }
    return null;
  }

  currentStep() {
    const entry = this.current();
    return entry ? entry.step : -1;
  }

  state() {
    const sounding = this.current();
    return {
      playing: this.playing,
      step: this.currentStep(),
      patternId: sounding ? sounding.patternId : (this.pattern ? this.pattern.id : null), // what is heard now
      scheduledId: this.pattern ? this.pattern.id : null, // what the scheduler (up to 1-2 s ahead) has reached
      pendingId: this.pending ? this.pending.pattern.id : null,
      switchAt: this.pending ? this.pending.at : null,
      qpm: this.qpm,
      kitId: this.kitId,
      kitLoaded: this.kits.has(this.kitId),
      kitLoadedAt: this.kitLoadedAt,
      context: this.ctx ? this.ctx.state : "none",
      audioTime: this.ctx ? this.ctx.currentTime : 0,
      timer: this.timer.kind,
      lookahead: this.lookahead,
      views: this.views.size,
    };
  }

  animate() {
    if (this.frame !== null) return;
    const frame = () => {
      this.frame = null;
      const entry = this.current();
      const step = entry ? entry.step : -1;
      if (step !== this.lastStep) {
        this.lastStep = step;
        this.render(entry);
        window.dispatchEvent(new CustomEvent("musicvae-looper-step", {
          detail: { step, patternId: entry ? entry.patternId : null } }));
      }
      if (this.playing) this.frame = requestAnimationFrame(frame);
    };
    this.frame = requestAnimationFrame(frame);
  }

  // -- views (one per mounted element) -------------------------------------------------------
  render(entry) {
    entry = entry === undefined ? this.current() : entry;
    for (const view of this.views) view.update(this, entry);
    this.playhead(entry);
  }

  // A playhead over the plotly piano roll of the groove that plays (the roll's Streamlit key comes
  // with the groove: .st-key-<roll>); a translucent column drawn over the plot area, one step wide.
  playhead(entry) {
    const roll = this.pattern && this.playing && entry && entry.step >= 0 ? this.pattern.roll : "";
    let plot = null;
    if (roll) {
      const holder = document.querySelector(".st-key-" + CSS.escape(roll));
      plot = holder && holder.querySelector(".js-plotly-plot");
    }
    for (const old of document.querySelectorAll(".mv-playhead")) {
      if (!plot || old.parentElement !== plot) old.remove();
    }
    const layout = plot && plot._fullLayout;
    if (!layout || !layout._size || !layout.xaxis || typeof layout.xaxis.l2p !== "function") return;
    let line = plot.querySelector(":scope > .mv-playhead");
    if (!line) {
      line = document.createElement("div");
      line.className = "mv-playhead";
      line.setAttribute("aria-hidden", "true");
      Object.assign(line.style, { position: "absolute", pointerEvents: "none", zIndex: "5",
        background: "rgba(31, 119, 180, 0.30)", borderLeft: "2px solid rgba(31, 119, 180, 0.9)" });
      if (getComputedStyle(plot).position === "static") plot.style.position = "relative";
      plot.appendChild(line);
    }
    const size = layout._size;
    const x0 = size.l + layout.xaxis.l2p(entry.step - 0.5);
    const x1 = size.l + layout.xaxis.l2p(entry.step + 0.5);
    line.style.left = `${x0}px`;
    line.style.width = `${Math.max(2, x1 - x0)}px`;
    line.style.top = `${size.t}px`;
    line.style.height = `${size.h}px`;
    line.dataset.step = String(entry.step);
  }

  attach(view) {
    this.views.add(view);
    if (this.stopTimer !== null) {
      clearTimeout(this.stopTimer);
      this.stopTimer = null;
    }
  }

  detach(view) {
    // A rerun calls the cleanup and mounts again at once; only a player gone for good stops.
    setTimeout(() => {
      if (!view.root.isConnected) this.views.delete(view);
      if (this.views.size === 0 && this.stopTimer === null) {
        this.stopTimer = setTimeout(() => {
          this.stopTimer = null;
          if (this.views.size === 0) this.stop();
        }, 1500);
      }
    }, 0);
  }

  // -- keyboard ------------------------------------------------------------------------------
  key(event) {
    if (!this.host || !this.host.keyboard || this.views.size === 0) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = (event.composedPath && event.composedPath()[0]) || event.target;
    if (isTyping(target)) return;
    const arrows = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down" };
    if (event.key === " " || event.code === "Space") {
      if (isClickable(target) || event.repeat) return; // space clicks a focused button itself
      event.preventDefault();
      this.toggle();
    } else if ((event.key === "n" || event.key === "N") && !event.repeat) {
      this.nextGroove();
      this.send("new");
    } else if (arrows[event.key]) {
      event.preventDefault();
      const moves = { left: [0, -1], right: [0, 1], up: [-1, 0], down: [1, 0] };
      const [dr, dc] = moves[arrows[event.key]];
      const cell = this.nav ? this.moveCell(dr, dc) : null; // the banked cell at once, Python follows
      this.send(cell || arrows[event.key]);
    }
  }

  send(command) {
    try {
      this.host.setTriggerValue("command", command);
    } catch (error) {
      console.error("musicvae looper: could not send", command, error);
    }
  }
}

const STEPS_PER_QUARTER_NOTE = 4;
const TYPING_ROLES = new Set(["slider", "textbox", "searchbox", "combobox", "spinbutton", "listbox", "option",
  "radio", "radiogroup", "tab", "tablist", "menuitem", "menu", "grid", "gridcell", "switch", "checkbox"]);

function isTyping(el) {
  if (!el || !el.tagName) return false;
  const tag = el.tagName.toUpperCase();
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return true;
  const role = el.getAttribute && el.getAttribute("role");
  return Boolean(role && TYPING_ROLES.has(role));
}

function isClickable(el) {
  if (!el || !el.tagName) return false;
  const tag = el.tagName.toUpperCase();
  return tag === "BUTTON" || tag === "A" || tag === "SUMMARY" || (el.getAttribute && el.getAttribute("role") === "button");
}

function looper() {
  const existing = window.__musicvaeLooper;
  if (existing && existing.version === VERSION) return existing;
  if (existing) { // an older copy of this file (the app was edited while the page stayed open)
    try {
      existing.stop();
      document.removeEventListener("keydown", existing.onKey);
      if (existing.onChartClick) document.removeEventListener("pointerdown", existing.onChartClick, true);
      if (existing.onNextClick) document.removeEventListener("click", existing.onNextClick, true);
      if (existing.sliderObserver) existing.sliderObserver.disconnect();
      if (existing.onSliderInput) document.removeEventListener("input", existing.onSliderInput, true);
      if (existing.ctx) existing.ctx.close();
    } catch (error) { /* gone */ }
  }
  const created = new Looper();
  window.__musicvaeLooper = created;
  return created;
}

class View {
  constructor(parent) {
    this.root = document.createElement("div");
    this.root.className = "mv-looper";
    this.root.innerHTML =
      '<button type="button" class="mv-play" aria-label="Play" title="Play / stop (space)">' +
      '<span class="mv-icon">&#9654;</span><span class="mv-text">Play</span></button>' +
      '<div class="mv-side"><div class="mv-label"></div>' +
      '<div class="mv-steps" aria-hidden="true"></div>' +
      '<div class="mv-status" aria-live="polite"></div></div>';
    parent.appendChild(this.root);
    this.button = this.root.querySelector(".mv-play");
    this.icon = this.root.querySelector(".mv-icon");
    this.text = this.root.querySelector(".mv-text");
    this.label = this.root.querySelector(".mv-label");
    this.status = this.root.querySelector(".mv-status");
    const steps = this.root.querySelector(".mv-steps");
    this.cells = [];
    for (let i = 0; i < STEPS_PER_BAR; i++) {
      const cell = document.createElement("span");
      cell.className = i % STEPS_PER_BEAT === 0 ? "mv-cell mv-beat" : "mv-cell";
      steps.appendChild(cell);
      this.cells.push(cell);
    }
    this.lit = -1;
    this.button.addEventListener("click", () => window.__musicvaeLooper.toggle());
  }

  update(player, entry) {
    const playing = player.playing;
    this.root.dataset.playing = playing ? "true" : "false";
    this.button.setAttribute("aria-label", playing ? "Stop" : "Play");
    this.button.setAttribute("aria-pressed", playing ? "true" : "false");
    this.icon.innerHTML = playing ? "&#9632;" : "&#9654;";
    this.text.textContent = playing ? "Stop" : "Play";
    const step = entry && entry.step >= 0 ? entry.step : -1;
    this.root.dataset.step = String(step);
    const cell = step >= 0 ? step % STEPS_PER_BAR : -1;
    if (cell !== this.lit) {
      if (this.lit >= 0) this.cells[this.lit].classList.remove("mv-on");
      if (cell >= 0) this.cells[cell].classList.add("mv-on");
      this.lit = cell;
    }
    const bars = player.pattern ? Math.ceil(player.pattern.steps / STEPS_PER_BAR) : 0;
    let status = "";
    if (!player.kits.has(player.kitId)) status = "loading the drum kit…";
    else if (step >= 0) status = `bar ${Math.floor(step / STEPS_PER_BAR) + 1}/${bars} · beat ${Math.floor((step % STEPS_PER_BAR) / STEPS_PER_BEAT) + 1}`;
    else status = `${Math.round(player.qpm)} qpm`;
    if (player.pending) status += ` · next groove at the next ${player.pending.at}`;
    if (player.queue) status += ` · following a path of ${player.queue.patterns.length} grooves, one per bar`;
    if (this.status.textContent !== status) this.status.textContent = status;
  }
}

// Python sends its data as JSON bytes (see looper() in __init__.py).
function decoded(data) {
  if (data instanceof ArrayBuffer) data = new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return JSON.parse(new TextDecoder().decode(data));
  return data;
}

export default function (component) {
  const { parentElement, setStateValue, setTriggerValue } = component;
  const data = decoded(component.data);
  const player = looper();
  let root = parentElement.querySelector(".mv-looper");
  let view = root && root.__view;
  if (!view) {
    view = new View(parentElement);
    view.root.__view = view;
  }
  view.label.textContent = (data && data.label) || "";
  player.attach(view);
  player.receive(data || {}, { setStateValue, setTriggerValue, keyboard: !(data && data.keyboard === false) });
  return () => player.detach(view);
}
