// The page of `gone app` (docs/app.md). No framework; text from the server is only ever set as
// text (textContent, attributes), never parsed as HTML.
"use strict";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let token = null, config = null, current = null;
const photos = new Map();      // id -> {info, instances, remove:Set, edits:canvas, undo:[], redo:[], result}
let tool = "none", painting = false, holeTimer = null, holeSeq = 0, busy = 0;

function say(text, info) { $("msg").textContent = text || ""; $("msg").className = info ? "info" : ""; }
function setState(s) { document.body.dataset.state = s; }

async function api(method, url, data, raw) {
  const opt = {method, headers: {"X-Gone-Session": token || ""}};
  if (data instanceof FormData) opt.body = data;
  else if (data !== undefined) { opt.headers["Content-Type"] = "application/json"; opt.body = JSON.stringify(data); }
  const r = await fetch(url, opt);
  if (!r.ok) {
    const j = await r.json().catch(() => ({error: "HTTP " + r.status}));
    throw new Error(j.error || ("HTTP " + r.status));
  }
  return raw ? r.blob() : r.json();
}
function withToken(url) { return url + (url.includes("?") ? "&" : "?") + "s=" + encodeURIComponent(token); }

async function run(label, f) {
  busy++; setState("busy");
  const t0 = performance.now();
  $("progress").hidden = false; $("progress-text").textContent = label;
  const tick = setInterval(() => { $("progress-text").textContent = label + " " + ((performance.now() - t0) / 1000).toFixed(0) + " s"; }, 500);
  try { say(""); await f(); if (--busy === 0) setState(current && current.result && !$("after").hidden ? "done" : "ready"); }
  catch (e) { busy--; say(e.message); setState("error"); }
  finally { clearInterval(tick); if (busy === 0) $("progress").hidden = true; }
}

// ---- opening photos -----------------------------------------------------------------------
async function upload(files) {   // one request per photo: the size limit is per request
  if (!files.length) return;
  await run("uploading", async () => {
    const errors = [], added = [];
    for (const [k, f] of files.entries()) {
      $("progress-text").textContent = `uploading ${k + 1}/${files.length}`;
      const form = new FormData();
      form.append("file", f, f.name);
      try { const j = await api("POST", "/api/photos", form); added.push(...j.photos); errors.push(...j.errors); }
      catch (e) { errors.push(e.message); }
    }
    addPhotos(added);
    if (errors.length) throw new Error(errors.join("; "));
  });
}
function addPhotos(list) {
  for (const info of list) {
    const li = document.createElement("li");
    li.dataset.id = info.id;
    li.textContent = info.name + " ";
    const mark = document.createElement("span"); mark.className = "done"; li.append(mark);
    li.addEventListener("click", () => select(info.id));
    $("photos").append(li);
    photos.set(info.id, {info, instances: [], remove: new Set(), edits: null, undo: [], redo: [], result: null, li});
  }
  if (list.length) select(list[0].id);
}
async function browse() {
  await run("listing", async () => {
    const j = await api("GET", "/api/browse");
    const ul = $("browse-list"); ul.replaceChildren();
    for (const f of j.files) {
      const li = document.createElement("li"); li.textContent = f.name;
      li.addEventListener("click", () => run("opening", async () => {
        const r = await api("POST", "/api/photos", {browse: [f.id]}); addPhotos(r.photos);
        if (r.errors.length) throw new Error(r.errors.join("; "));
      }));
      ul.append(li);
    }
    $("browse-panel").hidden = false;
    if (!j.files.length) say("no photos in the folder", true);
  });
}

// ---- one photo ----------------------------------------------------------------------------
async function select(id) {
  const p = photos.get(id); if (!p) return;
  current = p;
  for (const li of $("photos").children) li.classList.toggle("current", li.dataset.id === id);
  const {width: w, height: h} = p.info;
  if (!p.edits) { p.edits = document.createElement("canvas"); p.edits.width = w; p.edits.height = h; }
  const c = $("edits"); c.width = w; c.height = h; c.getContext("2d").drawImage(p.edits, 0, 0);
  $("overlay").setAttribute("viewBox", `0 0 ${w} ${h}`); $("overlay").setAttribute("preserveAspectRatio", "none");
  const scale = Math.min(($("centre").clientWidth || 800) / w, (window.innerHeight - 140) / h, 4);
  $("photo").style.width = Math.round(w * scale) + "px"; $("photo").style.height = Math.round(h * scale) + "px";
  $("photo").src = withToken(p.info.image);
  $("stage").hidden = false; $("drop-hint").hidden = true;
  showCompare(false);
  await run("detecting", () => loadDetections(p, !p.defaulted));
}
// Detections (cached by the server after the first call); the subject is chosen among the people
// with at least the slider's score, as `gone remove --keep subject --min-score` does.
async function loadDetections(p, reset) {
  const j = await api("POST", "/api/detect", {photo: p.info.id, min_score: parseFloat($("score").value)});
  if (p !== current) return;
  p.instances = j.instances;
  if (reset) { defaults(p); p.defaulted = true; }
  if (j.message) say(j.message, true);
  render(); await refreshHole();
}
function passes(inst) {
  const cls = $("class-filter").value;
  return (cls === "all" || inst.class === cls) && inst.score >= parseFloat($("score").value);
}
function defaults(p) {   // remove what the filter shows, except the subject
  p.remove = new Set(p.instances.filter((i) => passes(i) && !i.subject).map((i) => i.index));
}
function toggle(index) {
  const p = current; if (!p) return;
  p.remove.has(index) ? p.remove.delete(index) : p.remove.add(index);
  render(); scheduleHole();
}
function render() {
  const p = current; const svg = $("overlay"); const ul = $("instances");
  svg.replaceChildren(); ul.replaceChildren();
  if (!p) return;
  const shown = $("photo").getBoundingClientRect().width || p.info.width;
  const fs = 14 * p.info.width / shown;      // 14 screen pixels whatever the zoom
  for (const inst of p.instances) {
    if (!passes(inst)) { p.remove.delete(inst.index); continue; }
    const state = p.remove.has(inst.index) ? "remove" : "keep";
    for (const poly of inst.outline) {
      const el = document.createElementNS(SVG, "polygon");
      el.setAttribute("points", poly.map((q) => q.join(",")).join(" "));
      el.setAttribute("class", state); el.dataset.index = inst.index;
      el.addEventListener("click", () => toggle(inst.index));
      svg.append(el);
    }
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", inst.box[1] + 2); t.setAttribute("y", Math.max(fs, inst.box[0] - 3));
    t.setAttribute("font-size", fs); t.textContent = `${inst.class} ${inst.score.toFixed(2)}`;
    svg.append(t);
    const li = document.createElement("li");
    li.className = state; li.dataset.index = inst.index;
    li.textContent = `#${inst.index} ${inst.class} ${inst.score.toFixed(2)}: ${state} `;
    if (inst.subject) { const b = document.createElement("span"); b.className = "badge"; b.textContent = "subject"; li.append(b); }
    li.addEventListener("click", () => toggle(inst.index));
    ul.append(li);
  }
  $("remove").disabled = !p;
}

// ---- the hole -------------------------------------------------------------------------------
function editsUrl() {
  const p = current;
  const ctx = p.edits.getContext("2d");
  const data = ctx.getImageData(0, 0, p.edits.width, p.edits.height).data;
  for (let k = 3; k < data.length; k += 4) if (data[k]) return p.edits.toDataURL("image/png");
  return "";
}
function choices() {
  return {photo: current.info.id, remove: Array.from(current.remove).sort((a, b) => a - b),
          strategy: $("strategy").value, dilation: $("dilation").value, edits: editsUrl()};
}
// body[data-hole] is "stale" from a change until the hole drawn is that of the latest choices
function scheduleHole() {
  document.body.dataset.hole = "stale";
  clearTimeout(holeTimer); holeTimer = setTimeout(refreshHole, 250);
}
async function refreshHole() {
  if (!current) return;
  document.body.dataset.hole = "stale";
  const seq = ++holeSeq;
  try {
    const blob = await api("POST", "/api/hole", choices(), true);
    if (seq !== holeSeq) return;
    const old = $("hole").src; $("hole").src = URL.createObjectURL(blob);
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    document.body.dataset.hole = "fresh";
  } catch (e) { say(e.message); }
}

// ---- brush / eraser with undo / redo ------------------------------------------------------
function setTool(t) {
  tool = t;
  for (const b of document.querySelectorAll(".tool")) b.classList.toggle("active", b.dataset.tool === t);
  $("stage").classList.toggle("painting", t !== "none");
}
function snapshot() {
  const p = current; const ctx = p.edits.getContext("2d");
  p.undo.push(ctx.getImageData(0, 0, p.edits.width, p.edits.height));
  if (p.undo.length > 30) p.undo.shift();
  p.redo = [];
}
function restore(from, to) {
  const p = current; if (!p || !from.length) return;
  const ctx = p.edits.getContext("2d");
  to.push(ctx.getImageData(0, 0, p.edits.width, p.edits.height));
  ctx.putImageData(from.pop(), 0, 0);
  $("edits").getContext("2d").clearRect(0, 0, p.edits.width, p.edits.height);
  $("edits").getContext("2d").drawImage(p.edits, 0, 0);
  scheduleHole();
}
function imagePoint(e) {
  const r = $("edits").getBoundingClientRect();
  return [(e.clientX - r.left) * current.info.width / r.width, (e.clientY - r.top) * current.info.height / r.height];
}
function stroke(from, to) {
  for (const ctx of [current.edits.getContext("2d"), $("edits").getContext("2d")]) {
    ctx.globalCompositeOperation = "source-over";
    ctx.strokeStyle = tool === "brush" ? "#ff0000" : "#00ff00";
    ctx.lineWidth = parseFloat($("brush-size").value); ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(from[0], from[1]); ctx.lineTo(to[0], to[1]); ctx.stroke();
  }
}
let last = null;
$("edits").addEventListener("pointerdown", (e) => {
  if (tool === "none" || !current) return;
  e.preventDefault(); $("edits").setPointerCapture(e.pointerId);
  snapshot(); painting = true; last = imagePoint(e); stroke(last, last);
});
$("edits").addEventListener("pointermove", (e) => { if (!painting) return; const q = imagePoint(e); stroke(last, q); last = q; });
for (const ev of ["pointerup", "pointercancel"]) {
  $("edits").addEventListener(ev, () => { if (painting) { painting = false; scheduleHole(); } });
}

// ---- remove, compare, download --------------------------------------------------------------
function showCompare(on) {
  $("after").hidden = !on; $("split-line").hidden = !on; $("compare-bar").hidden = !on;
  $("overlay").style.display = on ? "none" : ""; $("hole").style.display = on || !$("show-hole").checked ? "none" : "";
  $("edits").style.display = on ? "none" : "";
  if (on) split();
}
function split() {
  const v = $("split").value;
  $("after").style.clipPath = `inset(0 0 0 ${v}%)`; $("split-line").style.left = v + "%";
}
async function removeNow() {
  const p = current; if (!p) return;
  const body = choices(); body.inpainter = $("inpainter").value;
  await run("removing", async () => {
    const r = await api("POST", "/api/remove", body);
    p.result = r;
    $("after").src = withToken(r.preview);
    await new Promise((ok) => { $("after").onload = ok; $("after").onerror = ok; });
    $("download").href = withToken(r.download); $("download").setAttribute("download", r.download_name);
    $("used").textContent = "filled by: " + r.inpainter + (r.message ? " · " + r.message : "");
    p.li.querySelector(".done").textContent = "✓";
    $("download-all").hidden = false;
    showCompare(true);
  });
}

// ---- wiring ---------------------------------------------------------------------------------
function fill(select, values, chosen) {
  select.replaceChildren();
  for (const v of values) { const o = document.createElement("option"); o.value = v; o.textContent = v; select.append(o); }
  select.value = chosen;
}
$("file").addEventListener("change", (e) => { upload(Array.from(e.target.files)); e.target.value = ""; });
$("browse").addEventListener("click", browse);
document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (e) => {
  e.preventDefault(); document.body.classList.remove("dragging");
  upload(Array.from(e.dataTransfer.files));
});
$("class-filter").addEventListener("change", () => { if (current) { defaults(current); render(); scheduleHole(); } });
$("score").addEventListener("input", () => { $("score-value").textContent = parseFloat($("score").value).toFixed(2); });
$("score").addEventListener("change", () => { if (current) run("detecting", () => loadDetections(current, true)); });
for (const id of ["strategy", "dilation"]) $(id).addEventListener("change", scheduleHole);
$("show-hole").addEventListener("change", () => { $("hole").style.display = $("show-hole").checked ? "" : "none"; });
for (const b of document.querySelectorAll(".tool")) b.addEventListener("click", () => setTool(b.dataset.tool));
$("undo").addEventListener("click", () => current && restore(current.undo, current.redo));
$("redo").addEventListener("click", () => current && restore(current.redo, current.undo));
$("clear-edits").addEventListener("click", () => {
  if (!current) return; snapshot();
  current.edits.getContext("2d").clearRect(0, 0, current.edits.width, current.edits.height);
  $("edits").getContext("2d").clearRect(0, 0, current.edits.width, current.edits.height);
  scheduleHole();
});
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z" && current) {
    e.preventDefault(); e.shiftKey ? restore(current.redo, current.undo) : restore(current.undo, current.redo);
  }
});
$("remove").addEventListener("click", removeNow);
$("split").addEventListener("input", split);
$("back").addEventListener("click", () => { showCompare(false); setState("ready"); });
$("download-all").addEventListener("click", (e) => { e.preventDefault(); location.href = withToken("/api/download-all"); });

(async function start() {
  try {
    token = (await api("POST", "/api/session")).session;
    config = await api("GET", "/api/config");
    fill($("class-filter"), ["all", ...config.classes], config.default_class);
    fill($("strategy"), config.strategies, config.default_strategy);
    fill($("inpainter"), config.inpainters, config.default_inpainter);
    $("dilation").value = config.default_dilation;
    $("score").value = config.min_score; $("score-value").textContent = config.min_score.toFixed(2);
    $("browse").hidden = !config.photos_dir;
    setState("empty");
  } catch (e) { say(e.message); setState("error"); }
})();
