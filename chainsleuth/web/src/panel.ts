// The side panel of the selected node: what the API says about it (balance, first and last
// seen, tags with source and confidence, the cluster's merge evidence, the CoinJoin flag),
// the expand/collapse/pin actions and the analyst's annotation form.

import {
  type Address,
  type Cluster,
  type Merge,
  type Page,
  type RelationTx,
  type Tag,
  type Tx,
  enc,
  get,
  post,
  withTime,
} from "./api";
import { btc, byId, clear, el, short, usd } from "./dom";
import * as graph from "./graph";
import { report, run } from "./status";

let current: string | null = null;

function kv(rows: [string, string | Node][]): HTMLElement {
  return el("dl", { class: "kv" }, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function section(title: string, id: string, ...children: (Node | string | null)[]): HTMLElement {
  return el("section", { id, class: "panel-section" }, el("h3", {}, title), ...children);
}

function button(label: string, id: string, onClick: () => void | Promise<void>): HTMLButtonElement {
  const b = el("button", { id, type: "button" }, label);
  b.addEventListener("click", () => run(label, async () => onClick()));
  return b;
}

function when(height: number | null | undefined, time?: string | null): string {
  if (height === null || height === undefined) return "–";
  return time ? `${time.replace("T", " ").replace("Z", " UTC")} (block ${height})` : `block ${height}`;
}

/** The CoinJoin flag of an address or wallet: how many CoinJoins it took part in, by mixer. */
function coinjoins(n: number, mixers: string[]): string {
  return n ? `yes: ${n} tx${n === 1 ? "" : "s"} (${mixers.join(", ")})` : "no";
}

function tagTable(tags: Tag[]): HTMLElement {
  if (!tags.length) return el("p", { class: "muted" }, "No tags.");
  return el(
    "table",
    { class: "tags" },
    el("thead", {}, el("tr", {}, ...["label", "category", "source", "confidence", "note"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...tagRows(tags)),
  );
}

function tagRows(tags: Tag[]): HTMLElement[] {
  return tags.map((t) =>
    el(
      "tr",
      {},
      el("td", {}, t.label),
      el("td", {}, t.category ?? ""),
      el("td", {}, `${t.source} (${t.tagpack})`),
      el("td", {}, `${t.confidence_level} (${t.confidence})`),
      el("td", {}, t.note ?? t.context ?? ""),
    ),
  );
}

/** One expansion direction: its buttons and how many neighbours are drawn of how many. */
function expandRow(id: string, dir: graph.Direction): HTMLElement {
  const rec = graph.expansion(id, dir);
  const word = dir === "in" ? "inputs (where it came from)" : "outputs (where it went)";
  const row = el("div", { class: "expand-row" }, el("span", {}, word + ": "));
  if (!rec) {
    row.append(button(`Expand ${dir}`, `expand-${dir}`, async () => {
      await graph.expand(id, dir);
      graph.layoutExpansion(id, dir);
      refreshGraphSection(id);
    }));
    return row;
  }
  const total = rec.total === null ? "?" : String(rec.total);
  row.append(el("span", { class: "count", id: `count-${dir}` }, `${rec.loaded} of ${total} drawn `));
  if (rec.next) {
    row.append(button("Load more", `more-${dir}`, async () => {
      await graph.expand(id, dir, true);
      graph.layoutExpansion(id, dir);
      refreshGraphSection(id);
    }));
  }
  row.append(button("Collapse", `collapse-${dir}`, async () => {
    graph.collapse(id, dir);
    refreshGraphSection(id);
  }));
  return row;
}

/** After an expansion, collapse or pin: redraw the panel's Graph section only (its counts and
 *  buttons); what the API said about the node has not changed, so it is not asked again. */
function refreshGraphSection(id: string): void {
  const section = document.getElementById("panel-graph");
  if (current === id && section) section.replaceWith(actions(id));
}

function actions(id: string): HTMLElement {
  const node = graph.cy.getElementById(id);
  const pin = button(node.hasClass("pinned") ? "Unpin" : "Pin", "pin", async () => {
    graph.togglePin(id);
    refreshGraphSection(id);
  });
  return section(
    "Graph",
    "panel-graph",
    expandRow(id, "in"),
    expandRow(id, "out"),
    el("div", { class: "buttons" }, pin, button("Use as trace target", "to-trace", () => {
      byId<HTMLInputElement>("trace-target").value = id.replace(/^(address|tx):/, "");
      byId("tab-trace").click();
    }), button("Path from here", "to-path", () => {
      byId<HTMLInputElement>("path-source").value = id.replace(/^address:/, "").replace(/^cluster:/, "");
      byId("tab-path").click();
    })),
  );
}

async function evidence(clusterId: number, target: HTMLElement, cursor: string | null): Promise<void> {
  const page = await get<Page<Merge>>(`/clusters/${clusterId}/merges`, { limit: 50, cursor });
  let table = target.querySelector("table");
  if (!table) {
    table = el(
      "table",
      { class: "evidence" },
      el("thead", {}, el("tr", {}, ...["txid", "rule", "change rules", "conf.", "joins"].map((h) => el("th", {}, h)))),
      el("tbody", {}),
    );
    target.append(el("p", { class: "muted" }, `${page.total ?? "?"} merges made this wallet (merge order).`), table);
  }
  const body = table.querySelector("tbody") as HTMLElement;
  for (const m of page.items) {
    const link = el("a", { href: "#", "data-txid": m.txid }, short(m.txid, 8));
    link.addEventListener("click", (e) => {
      e.preventDefault();
      void run("open tx", () => openTx(m.txid));
    });
    body.append(
      el("tr", {}, el("td", {}, link), el("td", {}, m.rule), el("td", {}, m.change_rules ?? ""),
        el("td", {}, m.confidence.toFixed(2)), el("td", {}, `${short(m.from)} + ${short(m.to)}`)),
    );
  }
  target.querySelector(".more-merges")?.remove();
  if (page.next_cursor) {
    const more = button("More merges", "more-merges", () => evidence(clusterId, target, page.next_cursor));
    more.classList.add("more-merges");
    target.append(more);
  }
}

function explainForm(address: string): HTMLElement {
  const other = el("input", { id: "explain-other", placeholder: "another address", size: "30" });
  const out = el("div", { id: "explain-out" });
  const go = button("Why one wallet?", "explain-go", async () => {
    const res = await get<{ linked: boolean; steps: { from: string; to: string; txid: string; rule: string; change_rules: string | null; confidence: number }[] }>(
      "/explain", { a: address, b: other.value.trim() });
    clear(out, res.linked
      ? el("ol", {}, ...res.steps.map((s) => el("li", {}, `${short(s.from)} → ${short(s.to)}: ${s.rule}${s.change_rules ? " (" + s.change_rules + ")" : ""}, tx ${short(s.txid, 8)}, confidence ${s.confidence.toFixed(2)}`)))
      : el("p", {}, "Not linked: the two addresses are in different wallets."));
  });
  return el("div", { class: "explain" }, other, go, out);
}

async function openTx(txid: string): Promise<void> {
  const id = `tx:${txid}`;
  if (graph.cy.getElementById(id).empty()) {
    graph.addSeed(await graph.fetchNode(id));
    graph.layout();
  }
  graph.cy.$(":selected").unselect();
  graph.cy.getElementById(id).select();
}

function annotateForm(address: string): HTMLElement {
  const label = el("input", { id: "note-label", placeholder: "label (e.g. suspect wallet)", required: "" });
  const category = el("input", { id: "note-category", placeholder: "category (taxonomy id: user, exchange, scam…)" });
  const note = el("textarea", { id: "note-text", placeholder: "analyst note", rows: "3" });
  const save = button("Save tag and note", "note-save", async () => {
    // An analyst tag, as `chainsleuth tags add` makes it; the note is its context.
    await post<Tag>("/tags", {
      address,
      label: label.value.trim(),
      source: "analyst (web explorer)",
      category: category.value.trim() || null,
      note: note.value.trim() || null,
    });
    report(`Saved tag "${label.value.trim()}" on ${short(address)}`);
    await show(`address:${address}`);
  });
  return section("Annotate", "panel-annotate", label, category, note, save);
}

async function showAddress(id: string, address: string, body: HTMLElement): Promise<void> {
  const a = await get<Address>(`/addresses/${enc(address)}`);
  const attr = a.attribution;
  body.append(
    el("h2", {}, attr?.actor ?? attr?.label ?? "Address"),
    el("p", { class: "mono" }, a.address),
    kv([
      ["balance", btc(a.balance)],
      ["received", btc(a.received)],
      ["sent", btc(a.sent)],
      ["transactions", String(a.n_txs)],
      ["first seen", when(a.first_seen_height, a.first_seen_time)],
      ["last seen", when(a.last_seen_height, a.last_seen_time)],
      ["script", a.script_type],
      ["CoinJoin", coinjoins(a.coinjoin_txs, a.mixers)],
      ["wallet", a.cluster_id === null ? "not clustered" : `cluster ${a.cluster_id} (${a.cluster_size} addresses)`],
      ["attribution", attr ? `${attr.actor ?? attr.label ?? "?"} · ${attr.category ?? "?"} · confidence ${attr.confidence ?? "?"}${attr.conflict ? " · CONFLICT" : ""}` : "none"],
    ]),
    actions(id),
    section("Tags", "panel-tags", tagTable(a.tags)),
  );
  if (a.cluster_id !== null) {
    const clusterId = a.cluster_id;
    const target = el("div", { id: "evidence-body" });
    body.append(
      section(
        "Why these addresses are one wallet",
        "panel-evidence",
        el("div", { class: "buttons" },
          button("Show merge evidence", "btn-evidence", () => evidence(clusterId, target, null)),
          button("Add wallet node", "btn-cluster-node", async () => {
            graph.addSeed(await graph.fetchNode(`cluster:${clusterId}`));
            graph.layout();
          })),
        target,
        explainForm(address),
      ),
    );
  }
  body.append(annotateForm(address));
}

async function showTx(id: string, txid: string, body: HTMLElement): Promise<void> {
  const t = await get<Tx>(`/txs/${enc(txid)}`);
  const io = (rows: { value: number; address: string | null }[], n: number) =>
    el("ul", { class: "io" }, ...rows.slice(0, 50).map((r) => el("li", {}, `${r.address ? short(r.address) : "(no address)"}: ${btc(r.value)}`)),
      n > 50 ? el("li", { class: "muted" }, `… ${n - 50} more (expand the node to page through them)`) : null);
  body.append(
    el("h2", {}, t.coinjoin ? `CoinJoin (${t.coinjoin.mixer})` : "Transaction"),
    el("p", { class: "mono" }, t.txid),
    kv([
      ["block", when(t.block_height, t.block_time)],
      ["inputs / outputs", `${t.n_inputs} / ${t.n_outputs}`],
      ["fee", btc(t.fee)],
      ["USD rate that day", t.usd_rate === null ? "unknown" : usd(t.usd_rate)],
      ["CoinJoin", t.coinjoin ? `yes: ${t.coinjoin.mixer}` : "no"],
      ["change guess", t.change ? `output ${t.change.vout} ${short(t.change.address)} (rules: ${t.change.rules.join(", ")})` : "none"],
    ]),
    actions(id),
    section("Inputs", "panel-inputs", io(t.inputs, t.n_inputs)),
    section("Outputs", "panel-outputs", io(t.outputs, t.n_outputs)),
  );
}

/** "More tags" for a wallet with more tags than the first page (GET /tags?cluster=ID). */
function moreTags(clusterId: number, first: Page<Tag>): HTMLElement | null {
  if (!first.next_cursor) return null;
  let cursor: string | null = first.next_cursor;
  let shown = first.items.length;
  const b = button(`${shown} of ${first.total ?? "?"} tags: more`, "more-tags", async () => {
    const page: Page<Tag> = await get(`/tags`, { cluster: clusterId, cursor, limit: 100 });
    byId("panel-tags").querySelector("tbody")?.append(...tagRows(page.items));
    shown += page.items.length;
    cursor = page.next_cursor;
    b.textContent = `${shown} of ${page.total ?? first.total ?? "?"} tags: more`;
    if (!cursor) b.remove();
  });
  return b;
}

async function showCluster(id: string, clusterId: string, body: HTMLElement): Promise<void> {
  const c = await get<Cluster>(`/clusters/${enc(clusterId)}`);
  const attr = c.attribution;
  const tags = c.tags;
  const target = el("div", { id: "evidence-body" });
  const members = el("ul", { id: "members", class: "io" });
  let cursor: string | null = null;
  const more = button("Load members", "btn-members", async () => {
    const page: Page<{ address: string }> = await get(`/clusters/${enc(clusterId)}/addresses`, { limit: 50, cursor });
    members.append(...page.items.map((m) => el("li", { class: "mono" }, m.address)));
    cursor = page.next_cursor;
    more.textContent = `${members.children.length} of ${page.total ?? c.n_addresses} shown: more`;
    if (!cursor) more.remove();
  });
  body.append(
    el("h2", {}, attr?.actor ?? attr?.label ?? `Wallet ${c.cluster_id}`),
    kv([
      ["cluster", String(c.cluster_id)],
      ["addresses", c.n_addresses.toLocaleString("en-US")],
      ["balance", btc(c.balance)],
      ["received", btc(c.received)],
      ["first seen", when(c.first_seen_height)],
      ["last seen", when(c.last_seen_height)],
      ["category", attr?.category ?? "untagged"],
      ["confidence", attr?.confidence === null || attr?.confidence === undefined ? "–" : String(attr.confidence)],
      ["CoinJoin", coinjoins(c.coinjoin_txs, c.mixers)],
      ["rules", Object.entries(c.rules).map(([r, n]) => `${r}: ${n}`).join(", ") || "none"],
      ["clustering", c.policy ?? "–"],
      ["conflicts", c.conflicts.join("; ") || "none"],
    ]),
    actions(id),
    section("Tags", "panel-tags", tagTable(tags.items), moreTags(c.cluster_id, tags)),
    section("Why these addresses are one wallet", "panel-evidence",
      button("Show merge evidence", "btn-evidence", () => evidence(c.cluster_id, target, null)), target),
    section("Members", "panel-members", members, more),
  );
}

/** An arrow: its sum and count, and the single txs behind it (paged, height order). */
export async function showEdge(id: string): Promise<void> {
  const edge = graph.cy.getElementById(id);
  if (edge.empty()) return;
  current = id;
  const d = edge.data() as { source: string; target: string; value: number; usd: number | null; n_txs: number };
  const list = el("ul", { class: "io", id: "relation-txs" });
  const body = el(
    "div",
    { "data-edge": id },
    el("h2", {}, "Flow"),
    kv([
      ["from", short(d.source.replace(/^\w+:/, ""), 10)],
      ["to", short(d.target.replace(/^\w+:/, ""), 10)],
      ["total", `${btc(d.value)} ${usd(d.usd)}`],
      ["transactions", String(d.n_txs)],
    ]),
    section("Transactions", "panel-relation", list),
  );
  let cursor: string | null = null;
  const more = button("Load txs", "btn-relation", async () => {
    const page: Page<RelationTx> = await get("/graph/relation", withTime({ source: d.source, target: d.target, limit: 50, cursor }));
    for (const t of page.items) {
      const link = el("a", { href: "#", "data-txid": t.txid }, short(t.txid, 8));
      link.addEventListener("click", (e) => {
        e.preventDefault();
        void run("open tx", () => openTx(t.txid));
      });
      list.append(el("li", {}, link, ` block ${t.height}: ${btc(t.value)} ${usd(t.usd)}`));
    }
    cursor = page.next_cursor;
    more.textContent = `${list.children.length} of ${page.total ?? d.n_txs} shown: more`;
    if (!cursor) more.remove();
  });
  body.append(more);
  clear(byId("panel"), body);
  more.click();
}

/** Show the node `id` ("address:…", "tx:…", "cluster:…") in the panel; null clears it. */
export async function show(id: string | null): Promise<void> {
  current = id;
  const panel = byId("panel");
  if (!id) {
    clear(panel, el("p", { class: "muted" }, "Select a node to see what is known about it."));
    return;
  }
  const body = el("div", { "data-node": id });
  const [kind, value] = [id.slice(0, id.indexOf(":")), id.slice(id.indexOf(":") + 1)];
  if (kind === "address") await showAddress(id, value, body);
  else if (kind === "tx") await showTx(id, value, body);
  else if (kind === "cluster") await showCluster(id, value, body);
  if (current === id) clear(panel, body);
}

export function selected(): string | null {
  return current;
}
