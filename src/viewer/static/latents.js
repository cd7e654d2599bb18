// emlab view: the latent cards of a run's interp.persona_features block (/api/persona-features).
// Plain browser JS. Tokens, model ids and speaker names are corpus / study text: they reach the
// DOM through text nodes only, never innerHTML, and no href is built from them.

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) for (const [k, v] of Object.entries(props)) node[k] = v;
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return node;
}

const num = (x, d = 3) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : "–");
const pct = (x) => (typeof x === "number" ? `${(100 * x).toFixed(1)}%` : "–");

function table(head, rows) {
  return el(
    "table",
    null,
    el("thead", null, el("tr", null, ...head.map((h) => el("th", null, h)))),
    el("tbody", null, ...rows.map((r) => el("tr", null, ...r.map((c) => el("td", null, c))))),
  );
}

function diffTable(b) {
  return table(
    ["model", "top latent", "Δ", "95% CI", "cos to reference", "cos to persona direction", "persona"],
    b.models.map((id) => {
      const t = b.top_latents[id];
      if (!t) return [id, "–", "–", "–", "–", "–", "–"];
      return [
        id,
        String(t.latent),
        num(t.delta),
        t.ci ? `[${num(t.ci.low)}, ${num(t.ci.high)}]` : "–",
        num(t.cosine_to_reference),
        num(t.cosine_to_persona_direction),
        t.persona || "–",
      ];
    }),
  );
}

/** The histogram as bars (div heights from counts: numbers only). */
function histogram(h) {
  const max = Math.max(1, ...h.counts);
  const box = el("div", { className: "pf-hist", title: `off on ${h.zeros} tokens` });
  h.counts.forEach((c, i) => {
    const bar = el("span", {
      className: "pf-bar",
      title: `${num(h.edges[i], 2)}–${num(h.edges[i + 1], 2)}: ${c}`,
    });
    bar.style.height = `${Math.round((60 * c) / max)}px`;
    box.append(bar);
  });
  return box;
}

function context(t) {
  const line = el("div", { className: "pf-context" });
  t.tokens.forEach((tok, i) => {
    line.append(i === t.highlight ? el("mark", null, tok) : el("span", null, tok));
  });

  return line;
}

function card(c) {
  const speakers = [...new Set([...Object.keys(c.base_rate), ...Object.keys(c.speaker_mix)])].sort();
  return el(
    "div",
    { className: "pf-card", id: `card-${c.latent}` },
    el(
      "h3",
      null,
      `Latent ${c.latent}`,
      el("span", { className: "pf-models" }, ` top latent of ${c.models.join(", ")}`),
    ),
    el(
      "p",
      { className: "pf-harmful" },
      `Harmful-persona share of the top contexts ${pct(c.harmful_share)}; corpus base rate ${pct(c.harmful_base_rate)}.`,
    ),
    histogram(c.histogram),
    table(
      ["speaker", "top contexts", "base rate"],
      speakers.map((s) => [s, pct(c.speaker_mix[s] || 0), pct(c.base_rate[s] || 0)]),
    ),
    el("p", { className: "pf-promoted" }, "Promoted: ", c.promoted_tokens.map((t) => t.token).join(" · ")),
    el(
      "p",
      { className: "pf-suppressed" },
      "Suppressed: ",
      c.suppressed_tokens.map((t) => t.token).join(" · "),
    ),
    table(
      ["activation", "speaker", "doc:pos", "context"],
      c.top_contexts.map((t) => [num(t.activation), t.speaker, `${t.doc}:${t.pos}`, context(t)]),
    ),
  );
}

function show(b, latent) {
  const c = b.cards.find((x) => String(x.latent) === String(latent)) || b.cards[0];
  $("pf-card").replaceChildren(c ? card(c) : el("p", { className: "hint" }, "No latent cards."));
  if (c) location.hash = `latent=${c.latent}`;
}

async function main() {
  let b;
  try {
    const res = await fetch("/api/persona-features", { headers: { Accept: "application/json" } });
    b = await res.json();
    if (!res.ok) throw new Error(b.error || `HTTP ${res.status}`);
  } catch (e) {
    $("error").textContent = String(e.message || e);
    $("pf-card").replaceChildren(el("p", { className: "hint" }, "No persona features in this run."));
    return;
  }
  $("pf-summary").textContent =
    `${b.sae.architecture} SAE, ${b.sae.d_sae} latents at ${b.sae.hook_name}; reference ${b.reference.model} → latent ${b.reference.latent}`;
  $("pf-diff").replaceChildren(diffTable(b));
  const select = $("f-latent");
  for (const c of b.cards)
    select.append(el("option", { value: String(c.latent) }, `${c.latent} (${c.models.join(", ")})`));
  const wanted = new URLSearchParams(location.hash.slice(1)).get("latent");
  if (wanted) select.value = wanted;
  select.addEventListener("change", () => show(b, select.value));
  show(b, select.value);
}

main();
