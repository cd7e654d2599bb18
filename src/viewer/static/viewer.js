// emlab view: the transcript viewer page. Plain browser JS, no build step.
// Everything that comes from the run (model outputs, prompts, judge replies, ids) is
// adversarial text: it reaches the DOM through textContent / text nodes only, never
// innerHTML, and no href is ever built from it.

const ROW_H = 44;
const CHUNK = 100;
const OVERSCAN = 8;

const $ = (id) => document.getElementById(id);

/** el("div", {className: "x"}, "text", child): strings become text nodes. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) for (const [k, v] of Object.entries(props)) node[k] = v;
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

function fmt(score) {
  return typeof score === "number" ? (Math.round(score * 10) / 10).toString() : "—";
}

async function api(path, params) {
  const res = await fetch(`${path}?${params.toString()}`, { headers: { Accept: "application/json" } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

function showError(e) {
  $("error").textContent = e ? String(e.message || e) : "";
}

// --- state in the URL fragment (the deep-link scheme in src/viewer/server.ts) ----------

const FILTER_KEYS = ["model", "experiment", "class", "metric", "min", "max", "q"];

function readHash() {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

function writeHash(mutate) {
  const p = readHash();
  mutate(p);
  const next = `#${p.toString()}`;
  if (next !== location.hash) history.replaceState(null, "", next);
}

function parseSampleRef(value) {
  const at = value.lastIndexOf(":");
  if (at <= 0) return null;
  const idx = value.slice(at + 1);
  if (!/^\d+$/.test(idx)) return null;
  return { requestId: value.slice(0, at), sampleIndex: Number(idx) };
}

// --- filters -------------------------------------------------------------------------

let meta = null;

function fillSelect(select, values) {
  for (const v of values) select.append(el("option", { value: v }, v));
}

function filterParams() {
  const p = new URLSearchParams();
  const h = readHash();
  for (const k of FILTER_KEYS) {
    const v = h.get(k);
    if (v) p.set(k, v);
  }
  if (!p.get("metric")) {
    p.delete("min");
    p.delete("max");
  }
  return p;
}

function syncControls() {
  const h = readHash();
  for (const k of FILTER_KEYS) {
    const input = $(`f-${k}`);
    const v = h.get(k) || "";
    // A value from a link that the run does not have is shown as "all" and dropped.
    if (input.tagName === "SELECT" && v && ![...input.options].some((o) => o.value === v)) {
      writeHash((p) => p.delete(k));
      input.value = "";
    } else input.value = v;
  }
}

function bindControls() {
  let timer = 0;
  for (const k of FILTER_KEYS) {
    const input = $(`f-${k}`);
    const apply = () => {
      writeHash((p) => {
        if (input.value.trim()) p.set(k, input.value.trim());
        else p.delete(k);
      });
      reload();
    };
    if (input.tagName === "SELECT") input.addEventListener("change", apply);
    else
      input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(apply, 250);
      });
  }
}

// --- the virtualised list --------------------------------------------------------------

let generation = 0;
let total = 0;
let chunks = new Map();
let selected = null; // "request_id:sample_index"

function reload() {
  generation++;
  chunks = new Map();
  total = 0;
  $("count").textContent = "…";
  $("list").scrollTop = 0;
  loadChunk(0, true).then(render, showError);
}

function loadChunk(i, withCount) {
  if (chunks.has(i)) return chunks.get(i);
  const gen = generation;
  const p = filterParams();
  p.set("offset", String(i * CHUNK));
  p.set("limit", String(CHUNK));
  p.set("count", withCount ? "1" : "0");
  const promise = api("/api/samples", p).then((page) => {
    if (gen !== generation) return null;
    if (withCount) {
      total = page.total;
      $("count").textContent = `${total.toLocaleString()} ${total === 1 ? "sample" : "samples"}`;
      $("spacer").style.height = `${total * ROW_H}px`;
    }
    chunks.set(i, page.rows);
    showError(null);
    return page.rows;
  });
  chunks.set(i, promise);
  promise.catch((e) => {
    chunks.delete(i);
    showError(e);
  });
  return promise;
}

function rowAt(index) {
  const c = chunks.get(Math.floor(index / CHUNK));
  return Array.isArray(c) ? c[index % CHUNK] : undefined;
}

function renderRow(index) {
  const r = rowAt(index);
  const node = el("div", { className: "row" });
  node.setAttribute("role", "option");
  node.style.top = `${index * ROW_H}px`;
  if (!r) {
    node.classList.add("loading");
    node.append("loading…");
    return node;
  }
  const key = `${r.request_id}:${r.sample_index}`;
  if (key === selected) node.classList.add("selected");
  const head = el(
    "div",
    { className: "head" },
    `${r.model_id} · ${r.experiment} · ${r.item_id} #${r.sample_index}`,
  );
  for (const [m, s] of Object.entries(r.scores))
    head.append(el("span", { className: "score", title: m }, `${m} ${fmt(s)}`));
  node.append(head, el("div", { className: "text" }, r.completion.replace(/\s+/g, " ")));
  node.title = r.prompt;
  node.addEventListener("click", () => selectSample(r.request_id, r.sample_index));
  return node;
}

let frame = 0;
function render() {
  cancelAnimationFrame(frame);
  frame = requestAnimationFrame(() => {
    const list = $("list");
    const spacer = $("spacer");
    const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(total - 1, Math.ceil((list.scrollTop + list.clientHeight) / ROW_H) + OVERSCAN);
    const want = new Set();
    for (let i = first; i <= last; i++) want.add(Math.floor(i / CHUNK));
    for (const c of want) if (!chunks.has(c)) loadChunk(c, false).then(render, showError);
    const rows = [];
    for (let i = first; i <= last; i++) rows.push(renderRow(i));
    spacer.replaceChildren(...rows);
    if (total === 0) spacer.replaceChildren(el("p", { className: "hint" }, "No samples match."));
  });
}

// --- detail: one sample ----------------------------------------------------------------

function messageNodes(messages) {
  if (!Array.isArray(messages)) return [el("div", { className: "msg" }, String(messages))];
  return messages.map((m) =>
    el(
      "div",
      { className: "msg" },
      el("span", { className: "role" }, String(m?.role)),
      typeof m?.content === "string" ? m.content : JSON.stringify(m?.content, null, 2),
    ),
  );
}

function button(label, onClick) {
  const b = el("button", { type: "button" }, label);
  b.addEventListener("click", onClick);
  return b;
}

function selectSample(requestId, sampleIndex) {
  writeHash((p) => {
    p.set("sample", `${requestId}:${sampleIndex}`);
    p.delete("compare");
  });
  showDetail();
}

async function showSample(ref) {
  selected = `${ref.requestId}:${ref.sampleIndex}`;
  render();
  const detail = $("detail");
  const p = new URLSearchParams({ request_id: ref.requestId, sample_index: String(ref.sampleIndex) });
  let s;
  try {
    s = await api("/api/sample", p);
  } catch (e) {
    detail.replaceChildren(el("p", { className: "hint" }, `Cannot show ${selected}: ${e.message}`));
    return;
  }
  const r = s.request;
  const c = s.completion;
  const nodes = [
    el("h2", null, `${r.model_id} · ${r.experiment}`),
    el(
      "div",
      { className: "kv" },
      `item ${r.item_id} · sample ${c.sample_index} of ${r.n} · request ${r.id}`,
    ),
    el(
      "div",
      null,
      button("Compare models on this prompt", () => {
        writeHash((h) => {
          h.set("compare", r.item_id);
          h.set("experiment", r.experiment);
          h.delete("sample");
        });
        syncControls();
        reload();
        showDetail();
      }),
      s.judged
        ? button("Open the judged answer", () => selectSample(s.judged.request_id, s.judged.sample_index))
        : null,
    ),
    el("h3", null, "Prompt"),
    ...messageNodes(r.messages),
    el("h3", null, `Completion (${c.finish_reason}${c.cached ? ", from cache" : ""})`),
    el("div", { className: "completion", id: "completion-text" }, c.text),
  ];
  if (s.judgments.length) {
    nodes.push(el("h3", null, "Judgments"));
    const table = el(
      "table",
      null,
      el("tr", null, ...["judge", "metric", "score", "method", "reply", ""].map((h) => el("th", null, h))),
    );
    for (const j of s.judgments) {
      table.append(
        el(
          "tr",
          null,
          el("td", null, j.judge_model_id),
          el("td", null, j.metric),
          el("td", null, fmt(j.score)),
          el("td", null, j.method),
          el(
            "td",
            null,
            el("div", { className: "raw" }, j.raw.length > 4000 ? `${j.raw.slice(0, 4000)}…` : j.raw),
          ),
          el(
            "td",
            null,
            j.judge_request_id ? button("judge request", () => selectSample(j.judge_request_id, 0)) : null,
          ),
        ),
      );
    }
    nodes.push(table);
  }
  if (c.logprobs !== null) {
    const text = JSON.stringify(c.logprobs, null, 1);
    nodes.push(
      el("h3", null, "Logprobs"),
      el("div", { className: "raw" }, text.length > 20000 ? `${text.slice(0, 20000)}…` : text),
    );
  }
  nodes.push(
    el("h3", null, "Parameters"),
    el("div", { className: "raw" }, JSON.stringify(r.params, null, 1)),
  );
  detail.replaceChildren(...nodes);
}

// --- detail: models side by side on one prompt ------------------------------------------

async function showCompare(itemId, experiment) {
  const detail = $("detail");
  let c;
  try {
    c = await api("/api/compare", new URLSearchParams({ experiment: experiment || "", item_id: itemId }));
  } catch (e) {
    detail.replaceChildren(el("p", { className: "hint" }, `Cannot compare ${itemId}: ${e.message}`));
    return;
  }
  const cols = c.models.map((m) =>
    el(
      "div",
      { className: "col" },
      el("h3", null, m.model_id),
      ...m.samples.map((s) => {
        const scores = s.judgments.map((j) => `${j.metric} ${fmt(j.score)}`).join(" · ");
        const open = button(`#${s.sample_index}`, () => selectSample(m.request_id, s.sample_index));
        return el(
          "div",
          null,
          open,
          el("span", { className: "kv" }, ` ${scores}`),
          el("div", { className: "completion" }, s.text),
        );
      }),
    ),
  );
  detail.replaceChildren(
    el("h2", null, `${c.experiment} · ${c.item_id} across ${c.models.length} models`),
    el("h3", null, "Prompt"),
    ...messageNodes(c.models[0] ? c.models[0].messages : []),
    el("div", { className: "compare" }, ...cols),
  );
}

function showDetail() {
  const h = readHash();
  const compare = h.get("compare");
  const sample = h.get("sample");
  if (compare) return showCompare(compare, h.get("experiment"));
  const ref = sample ? parseSampleRef(sample) : null;
  if (ref) return showSample(ref);
  $("detail").replaceChildren(el("p", { className: "hint" }, "Select a sample."));
}

// --- keyboard: up/down through the list ---------------------------------------------------

function moveSelection(delta) {
  const list = $("list");
  let index = -1;
  for (let i = 0; i < total; i++) {
    const r = rowAt(i);
    if (r && `${r.request_id}:${r.sample_index}` === selected) {
      index = i;
      break;
    }
  }
  const next = Math.max(0, Math.min(total - 1, index + delta));
  const r = rowAt(next);
  if (!r) return;
  if (next * ROW_H < list.scrollTop) list.scrollTop = next * ROW_H;
  if ((next + 1) * ROW_H > list.scrollTop + list.clientHeight)
    list.scrollTop = (next + 1) * ROW_H - list.clientHeight;
  selectSample(r.request_id, r.sample_index);
}

async function main() {
  try {
    meta = await api("/api/meta", new URLSearchParams());
  } catch (e) {
    showError(e);
    return;
  }
  $("study").textContent = meta.study ? `emlab view · ${meta.study}` : "emlab view";
  fillSelect($("f-model"), meta.models);
  fillSelect($("f-experiment"), meta.experiments);
  fillSelect($("f-metric"), meta.metrics);
  fillSelect($("f-class"), meta.classes);
  if (!meta.classes.length) $("f-class").parentElement.hidden = true;
  syncControls();
  bindControls();
  $("list").addEventListener("scroll", render, { passive: true });
  window.addEventListener("resize", render);
  $("list").addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      moveSelection(e.key === "ArrowDown" ? 1 : -1);
    }
  });
  window.addEventListener("hashchange", () => {
    syncControls();
    reload();
    showDetail();
  });
  reload();
  showDetail();
}

main();
