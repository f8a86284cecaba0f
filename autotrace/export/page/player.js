// autotrace's player: the multi-pane view of a recording (or of a live
// share) in a browser. Everything it draws was drawn by autotrace: pane
// screens are frames of its screen model, the layout, titles, header and
// footer come from its view (export/frames.py describes the data). This
// script only picks the frame for a moment and places rows. It never
// fetches anything, except a live share's own stream of new frames.
"use strict";

const $ = (id) => document.getElementById(id);
let D = null;            // the page's data
const S = { t: 0, playing: false, speed: 1, zoom: null, focus: 0, search: null,
            message: "", last: 0, follow: true, following: false, helpOpen: false };
const SPEEDS = [0.25, 0.5, 1, 2, 4, 8, 16];
const cache = [];        // per pane: {index, rows} of the frame last built

async function loadData() {
  const packed = $("autotrace-data").textContent.trim();
  const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}

// ---------------------------------------------------------------- frames

function lastAtOrBefore(frames, t) {
  let lo = 0, hi = frames.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (frames[mid][0] <= t + 1e-9) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

function applyFrame(rows, frame) {
  if (frame[1] < 0) return frame[2].slice();
  let out = rows;
  if (frame[1] > 0) out = rows.slice(frame[1]).concat(Array(frame[1]).fill([]));
  else out = rows.slice();
  for (const [y, row] of frame[2]) out[y] = row;
  return out;
}

function paneRows(p, t) {
  const frames = D.panes[p].frames;
  const index = lastAtOrBefore(frames, t);
  if (index < 0) return [];
  let c = cache[p];
  if (!c || c.index > index || index - c.index > 64) {
    let k = index;
    while (k > 0 && frames[k][1] >= 0) k--;
    c = { index: k, rows: applyFrame([], frames[k]) };
  }
  for (let i = c.index + 1; i <= index; i++) c.rows = applyFrame(c.rows, frames[i]);
  c.index = index;
  cache[p] = c;
  return c.rows;
}

function title(p, t) {
  const titles = D.panes[p].titles;
  const i = Math.max(0, lastAtOrBefore(titles, t));
  return titles.length ? titles[i][p === S.focus ? 2 : 1] : [];
}

const textOf = (runs) => runs.filter((_, i) => i % 2 === 0).join("");

// ---------------------------------------------------------------- drawing

function spans(parent, runs, marks) {
  // Runs of text with their style; `marks` (column ranges) are drawn as <mark>.
  let x = 0;
  for (let i = 0; i < runs.length; i += 2) {
    const text = runs[i], cls = D.styles[runs[i + 1]] || "";
    let pos = 0;
    while (pos < text.length) {
      const at = x + pos;
      const m = marks.find((r) => r[1] > at && r[0] < x + text.length);
      let end = text.length, marked = false;
      if (m && m[0] <= at) { end = Math.min(text.length, m[1] - x); marked = true; }
      else if (m) end = m[0] - x;
      const span = document.createElement(marked ? "mark" : "span");
      if (cls) span.className = cls;
      span.textContent = text.slice(pos, end);
      parent.appendChild(span);
      pos = end;
    }
    x += text.length;
  }
}

function matches(text) {
  const out = [];
  if (!S.search) return out;
  const re = new RegExp(S.search.source, "g");
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m[0].length === 0) { re.lastIndex++; continue; }
    out.push([m.index, m.index + m[0].length]);
  }
  return out;
}

function rowDiv(runs, marks, prefix) {
  const div = document.createElement("div");
  div.className = "row";
  if (prefix) spans(div, prefix, []);
  spans(div, runs, marks || []);
  return div;
}

function overlay(runs, at, text) {
  // The clock written over the header's runs at column `at`.
  const out = [];
  let x = 0;
  for (let i = 0; i < runs.length; i += 2) {
    const s = runs[i], start = x, end = x + s.length;
    if (end <= at || start >= at + text.length) out.push(s, runs[i + 1]);
    else {
      const from = Math.max(0, at - start), to = Math.min(s.length, at + text.length - start);
      out.push(s.slice(0, from) + text.slice(start + from - at, start + to - at) + s.slice(to),
               runs[i + 1]);
    }
    x = end;
  }
  return out;
}

function mmss(t) {
  const tenths = Math.floor(t * 10 + 1e-6);
  const mm = String(Math.floor(tenths / 600)).padStart(2, "0");
  const ss = String(Math.floor(tenths / 10) % 60).padStart(2, "0");
  return `${mm}:${ss}.${tenths % 10}`;
}

function badge() {
  if (D.live) return S.follow ? "" : "PAUSED";
  if (S.t >= D.duration) return "END";
  return S.playing ? "PLAY" : "PAUSED";
}

function draw() {
  const term = $("term");
  term.replaceChildren();
  term.style.width = `${D.cols}ch`;
  term.style.height = `${D.rows * 1.25}em`;
  const header = D.headers[badge()] || D.headers[Object.keys(D.headers)[0]];
  const clock = `${mmss(S.t)} / ${mmss(D.duration)}  x${S.speed}`.padEnd(D.clock_width);
  const top = rowDiv(overlay(header, D.clock_at[badge()] ?? 0, clock));
  term.appendChild(top);
  const layout = D.layouts[S.zoom === null ? "all" : String(S.zoom)];
  for (const [key, rect] of Object.entries(layout)) {
    const p = Number(key), [x, y, w, h] = rect;
    const div = document.createElement("div");
    div.className = "pane";
    div.dataset.pane = key;
    Object.assign(div.style, { left: `${x}ch`, top: `${y * 1.25}em`, width: `${w}ch`,
                               height: `${h * 1.25}em` });
    div.appendChild(rowDiv(title(p, S.t)));
    const rows = paneRows(p, S.t);
    const shown = rows.slice(Math.max(0, rows.length - (h - 1)));  // cropped: the newest rows
    const border = x > 0 ? ["│", D.border_style[p] ?? 0] : null;
    for (let i = 0; i < h - 1; i++) {
      const runs = shown[i] || [];
      div.appendChild(rowDiv(runs, matches(textOf(runs)), border));
    }
    term.appendChild(div);
  }
  const bottom = S.message
    ? rowDiv([` ${S.message}`.padEnd(D.cols), D.message_style])
    : rowDiv(D.footer);
  bottom.style.position = "absolute";
  bottom.style.top = `${(D.rows - 1) * 1.25}em`;
  term.appendChild(bottom);
  if (S.helpOpen) {
    const help = document.createElement("div");
    help.id = "help";
    help.textContent = "autotrace keys (the replay's)\n\n" +
      D.help.map(([k, m]) => `  ${k.padEnd(22)} ${m}`).join("\n");
    term.appendChild(help);
  }
  $("seekbar").max = D.duration;
  $("seekbar").value = S.t;
  $("clock").textContent = clock.trim();
  $("play").textContent = S.playing ? "||" : "▶";
}

function fitWidth() {
  // A view wider than the window (many panes at their recorded size) is
  // drawn smaller, down to 7 px, rather than cut.
  const term = $("term");
  term.style.fontSize = "14px";
  const room = window.innerWidth - 12;
  if (term.scrollWidth > room) {
    term.style.fontSize = `${Math.max(7, (14 * room) / term.scrollWidth).toFixed(2)}px`;
  }
}

function drawTicks() {
  // Markers, and findings (clicking one goes there, its pane focused).
  const ticks = $("ticks");
  ticks.replaceChildren();
  const marks = D.markers.map(([t, label]) => [t, `${label} at ${t.toFixed(1)} s`, "", null]);
  const found = (D.findings || []).map(([t, severity, text, p]) =>
    [t, `${severity}: ${text} (pane ${p}, ${t.toFixed(1)} s)`, "finding", p]);
  for (const [t, text, cls, p] of [...marks, ...found]) {
    const tick = document.createElement("span");
    tick.style.left = `${D.duration ? (t / D.duration) * 100 : 0}%`;
    tick.title = text;
    tick.className = cls;
    tick.onclick = () => {
      S.following = false;
      if (p !== null) S.focus = p;
      seek(t);
      say(text);
      draw();
    };
    ticks.appendChild(tick);
  }
}

// ---------------------------------------------------------------- commands

function seek(t) {
  S.t = Math.max(0, Math.min(D.duration, t));
  S.follow = D.live && S.t >= D.duration;
  draw();
}

function say(text) { S.message = text; }

function toMarker(step) {
  const eps = 1e-6;
  const list = D.markers.map((m) => m[0]);
  const t = step > 0 ? list.find((m) => m > S.t + eps)
                     : list.filter((m) => m < S.t - eps).pop();
  if (t === undefined) { say(step > 0 ? "no later marker" : "no earlier marker"); return; }
  const label = D.markers.find((m) => m[0] === t)[1];
  seek(t);
  say(`marker: ${label.replace(/^user:/, "")}`);
}

function findMatch(backwards) {
  // The first moment after (or the last before) now at which a row matching
  // the search appears in some pane: frames hold each row when it changes.
  let best = null;
  const re = S.search;
  const order = D.panes.map((_, i) => (S.focus + i) % D.panes.length);
  for (const p of order) {
    for (const frame of D.panes[p].frames) {
      const t = frame[0];
      if (backwards ? t >= S.t - 1e-6 : t <= S.t + 1e-6) continue;
      const rows = frame[1] < 0 ? frame[2] : frame[2].map((change) => change[1]);
      if (rows.some((row) => re.test(textOf(row)))) {
        if (!best || (backwards ? t > best[1] : t < best[1])) best = [p, t];
        if (!backwards) break;
      }
    }
  }
  return best;
}

function runSearch(backwards) {
  if (!S.search) return;
  const found = findMatch(backwards);
  if (!found) {
    say(`/${S.search.source}: no ${backwards ? "earlier" : "later"} match`);
    draw();
    return;
  }
  const [p, t] = found;
  S.focus = p;
  if (S.zoom !== null) S.zoom = p;
  S.playing = false;
  seek(t);
  say(`/${S.search.source}: pane ${p} at ${t.toFixed(1)} s`);
}

function setSearch(text) {
  try { S.search = new RegExp(text); } catch (err) { say(`bad regex: ${err.message}`); return; }
  runSearch(false);
}

function zoom(p) {
  if (p !== null && p >= D.panes.length) { say(`no pane ${p}`); return; }
  S.zoom = p === null || S.zoom === p ? null : p;
  if (S.zoom !== null) S.focus = S.zoom;
  $("zoom").value = S.zoom === null ? "" : String(S.zoom);
}

function parseTime(text) {
  const m = /^\s*(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)\s*$/.exec(text);
  if (!m) return null;
  return Number(m[1] || 0) * 3600 + Number(m[2] || 0) * 60 + Number(m[3]);
}

function goTo(text) {
  const t = parseTime(text);
  if (t === null) { say(`not a time: ${text} (e.g. 83.5 or 1:23.5)`); draw(); return; }
  seek(t);
  say(`at ${S.t.toFixed(1)} s`);
}

function changeSpeed(step) {
  const i = SPEEDS.indexOf(S.speed);
  S.speed = SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, (i < 0 ? 2 : i) + step))];
  say(`speed x${S.speed}`);
}

function play() {
  if (S.t >= D.duration && !D.live) S.t = 0;
  S.playing = true;
  S.last = performance.now();
}

// The terminal replay's commands (view/keymap.py); the page's keys come from there.
const COMMANDS = {
  play_pause: () => (S.playing ? (S.playing = false) : play()),
  play: () => play(),
  faster: () => changeSpeed(1),
  slower: () => changeSpeed(-1),
  seek_back: () => seek(S.t - 5),
  seek_forward: () => seek(S.t + 5),
  marker_previous: () => toMarker(-1),
  marker_next: () => toMarker(1),
  start: () => seek(0),
  end: () => seek(D.duration),
  go_to: () => $("time").focus(),
  zoom: (key) => zoom(Number(key)),
  unzoom: () => zoom(null),
  focus_next: () => { S.focus = (S.focus + 1) % D.panes.length; },
  focus_previous: () => { S.focus = (S.focus + D.panes.length - 1) % D.panes.length; },
  search: () => $("search").focus(),
  search_again: () => runSearch(false),
  search_reverse: () => runSearch(true),
  colours: () => $("term").classList.toggle("nocolour"),
  help: () => { S.helpOpen = !S.helpOpen; },
};

function onKey(event) {
  if (event.target.tagName === "INPUT" && event.target.type === "text") return;
  if (event.ctrlKey || event.altKey || event.metaKey) return;
  if (S.helpOpen) { S.helpOpen = false; draw(); event.preventDefault(); return; }
  const command = D.keys[event.key];
  if (!command) return;
  event.preventDefault();
  S.message = "";
  S.following = false;
  COMMANDS[command](event.key);
  draw();
}

function tick(now) {
  if (S.playing && !D.live) {
    S.t = Math.min(D.duration, S.t + ((now - S.last) / 1000) * S.speed);
    if (S.t >= D.duration) S.playing = false;
    draw();
  }
  S.last = now;
  requestAnimationFrame(tick);
}

// ---------------------------------------------------------------- live share

function followStream() {
  // A live share: new frames as server-sent events from the page's own server.
  const source = new EventSource(`stream${location.search}&from=${D.received}`);
  source.onmessage = (event) => {
    for (const [kind, p, item] of JSON.parse(event.data)) {
      while (D.panes.length <= p) D.panes.push({ frames: [], titles: [] });
      if (kind === "frame") D.panes[p].frames.push(item);
      else if (kind === "title") D.panes[p].titles.push(item);
      else if (kind === "page" && "position" in item) {
        // replay --share: where the presenter's replay is, until the viewer seeks
        if (S.following) { S.t = item.position; S.playing = false; }
        D.received++;
        continue;
      } else if (kind === "page") { Object.assign(D, item); if (item.cols) setTimeout(fitWidth); }
      D.received++;
      const t = kind === "page" ? item.duration : item[0];
      if (t > D.duration) D.duration = t;
    }
    if (S.follow && D.live) S.t = D.duration;
    draw();
  };
  source.onerror = () => { say("share ended (or the connection dropped)"); draw(); };
}

// ---------------------------------------------------------------- tests

function report(name) {
  // What the page shows, as text, for tests driving it through the URL's
  // hash (#steps=seek:12.5;marker:next;search:regex;zoom:1;dump).
  const panes = {};
  for (const div of document.querySelectorAll("#term .pane")) {
    panes[div.dataset.pane] = [...div.querySelectorAll(".row")].map((r) => r.textContent);
  }
  const requests = performance.getEntriesByType("resource").map((e) => e.name);
  return { name, t: S.t, message: S.message, panes, requests,
           marks: document.querySelectorAll("#term mark").length,
           findings: [...document.querySelectorAll("#ticks span.finding")].map((e) => e.title),
           header: document.querySelector("#term .row").textContent };
}

function shownText() {
  return [...document.querySelectorAll("#term .pane")].map((div) => div.textContent).join("\n");
}

async function runSteps() {
  const m = /steps=([^&]*)/.exec(location.hash);
  if (!m) return;
  const out = [];
  for (const step of decodeURIComponent(m[1]).split(";")) {
    const [verb, ...rest] = step.split(":");
    const arg = rest.join(":");
    if (verb === "seek") seek(Number(arg));
    else if (verb === "marker") toMarker(arg === "next" ? 1 : -1);
    else if (verb === "search") setSearch(arg);
    else if (verb === "zoom") zoom(arg === "" ? null : Number(arg));
    else if (verb === "key") COMMANDS[D.keys[arg]](arg);
    else if (verb === "dump") out.push(report(arg));
    else if (verb === "waitfor") {  // a live share: until the panes show a match (10 s at most)
      const re = new RegExp(arg);
      for (let i = 0; i < 100 && !re.test(shownText()); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    draw();
  }
  $("report").textContent = JSON.stringify(out);
}

// ---------------------------------------------------------------- start

async function start() {
  D = await loadData();
  D.received = D.received || 0;
  for (const p of D.panes) if (!p.frames) p.frames = [];
  $("zoom").replaceChildren(new Option("all panes", ""),
    ...D.panes.map((p, i) => new Option(`zoom ${i}: ${p.command}`, String(i))));
  $("zoom").onchange = () => { zoom($("zoom").value === "" ? null : Number($("zoom").value)); draw(); };
  $("play").onclick = () => { COMMANDS.play_pause(); draw(); };
  $("back").onclick = () => COMMANDS.seek_back();
  $("forward").onclick = () => COMMANDS.seek_forward();
  $("previous").onclick = () => { toMarker(-1); draw(); };
  $("next").onclick = () => { toMarker(1); draw(); };
  $("slower").onclick = () => { changeSpeed(-1); draw(); };
  $("faster").onclick = () => { changeSpeed(1); draw(); };
  $("seekbar").oninput = () => { S.following = false; seek(Number($("seekbar").value)); };
  $("search").onkeydown = (e) => { if (e.key === "Enter") { setSearch(e.target.value); draw(); e.target.blur(); } };
  $("time").onkeydown = (e) => { if (e.key === "Enter") { goTo(e.target.value); draw(); e.target.blur(); } };
  document.addEventListener("keydown", onKey);
  drawTicks();
  if (D.live) { S.t = D.duration; followStream(); }
  if (D.follow) { S.following = true; followStream(); say("following the presenter's replay"); }
  draw();
  fitWidth();
  window.addEventListener("resize", fitWidth);
  runSteps();
  requestAnimationFrame(tick);
}

start();
