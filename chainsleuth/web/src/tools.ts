// The tool views beside the canvas: trace (and auto-trace), path search, and cases (upload
// seeds, watch progress, leads table, money flow, downloads, open a lead's path).

import {
  type CaseStatus,
  type LeadGraph,
  type Page,
  type PathResult,
  type Row,
  type TraceResult,
  type TraceRow,
  all,
  enc,
  get,
  getBlob,
  post,
  withTime,
} from "./api";
import { btc, byId, clear, download, el, parseBtc, short, usd } from "./dom";
import * as graph from "./graph";
import { report, run } from "./status";

function input(id: string): HTMLInputElement {
  return byId<HTMLInputElement>(id);
}

function select(id: string): HTMLSelectElement {
  return byId<HTMLSelectElement>(id);
}

function highlightPath(edgeIds: string[]): void {
  graph.cy.edges().removeClass("path");
  for (const id of edgeIds) graph.cy.getElementById(id).addClass("path");
}

// ------------------------------------------------------------------------------------ trace
let traceCursor: string | null = null;

function traceQuery() {
  return withTime({
    target: input("trace-target").value.trim(),
    direction: select("trace-direction").value,
    policy: select("trace-policy").value,
    max_hops: input("trace-hops").value,
    min_value: parseBtc(input("trace-min").value),
    stops: input("trace-stops").checked,
    walk_coinjoins: input("trace-coinjoins").checked,
    limit: 100,
  });
}

function traceRows(rows: TraceRow[]): HTMLElement[] {
  return rows.map((r) => {
    const tr = el(
      "tr",
      { "data-address": r.address ?? "" },
      el("td", {}, r.address ? short(r.address) : "–"),
      el("td", { class: "num" }, btc(r.amount)),
      el("td", { class: "num" }, String(r.hops)),
      el("td", {}, r.kind),
      el("td", {}, r.entity ?? ""),
      el("td", {}, r.poison ? "poison" : r.low_confidence ? "low" : ""),
    );
    tr.addEventListener("click", () => {
      const node = graph.cy.getElementById(`address:${r.address}`);
      if (node.nonempty()) {
        graph.cy.$(":selected").unselect();
        node.select();
        graph.cy.center(node);
      }
    });
    return tr;
  });
}

async function runTrace(more: boolean): Promise<void> {
  const out = byId("trace-out");
  const res = await get<TraceResult>("/trace", { ...traceQuery(), cursor: more ? traceCursor : undefined });
  if (!more) {
    clear(out);
    if (input("trace-clear").checked) graph.clearGraph();
    const target = input("trace-target").value.trim();
    const origin = `trace:${target}:${select("trace-direction").value}`;
    if (res.graph) graph.addElements(origin, res.graph.nodes, res.graph.edges);
    const seed = graph.cy.nodes().filter((n) => n.data("label") === target);
    seed.addClass("seed");
    graph.layout();
    out.append(
      el("p", { id: "trace-summary" }, `${res.total ?? res.items.length} endpoints; the flow stops at named entities and CoinJoins when "stop" is on.`),
      el("table", { class: "rows", id: "trace-table" },
        el("thead", {}, el("tr", {}, ...["address", "amount", "hops", "kind", "entity", "flag"].map((h) => el("th", {}, h)))),
        el("tbody", {})),
    );
  }
  out.querySelector("tbody")?.append(...traceRows(res.items));
  traceCursor = res.next_cursor;
  out.querySelector("#trace-more")?.remove();
  if (traceCursor) {
    const b = el("button", { id: "trace-more", type: "button" }, "More rows");
    b.addEventListener("click", () => void run("trace", () => runTrace(true)));
    out.append(b);
  }
}

// ------------------------------------------------------------------------------------- path
/** A node id without its kind ("address:x" → "x"). */
function bare(id: string): string {
  return id.slice(id.indexOf(":") + 1);
}

async function runPath(): Promise<void> {
  const res = await get<PathResult>("/path", withTime({
    source: input("path-source").value.trim(),
    target: input("path-target").value.trim(),
    mode: select("path-mode").value,
    level: select("path-level").value,
    max_hops: input("path-hops").value,
  }));
  const out = byId("path-out");
  if (!res.found) {
    clear(out, el("p", {}, `No path: ${res.status}`));
    return;
  }
  graph.addElements(`path:${input("path-source").value}:${input("path-target").value}`, res.nodes, res.edges);
  graph.layout();
  highlightPath(res.edges.map((e) => e.id));
  clear(
    out,
    el("p", {}, `${res.n_hops} hops, bottleneck ${btc(res.bottleneck)}`),
    el("ol", {}, ...res.hops.map((h) => el("li", {}, `${short(bare(h.from_node))} → ${short(bare(h.to_node))}: ${btc(h.amount)} (tx ${short(h.txid, 8)})`))),
  );
}

// ------------------------------------------------------------------------------------ cases
let caseId: string | null = null;
let leads: Row[] = [];
let sortKey = "amount_sat";
let sortDesc = true;

const LEAD_SHOWN = ["deposit_address", "source_entity", "source_category", "amount_sat", "amount_usd", "block_time", "hops", "confidence"];
const NUMERIC = new Set(["amount_sat", "amount_usd", "hops", "confidence", "block_height"]);

async function startCase(): Promise<void> {
  const file = input("case-file").files?.[0];
  if (!file) throw new Error("choose a seed CSV (one address per row, column 'address')");
  const form = new FormData();
  form.append("seeds", file, file.name);
  const name = input("case-name").value.trim();
  if (name) form.append("name", name);
  form.append("policy", select("case-policy").value);
  form.append("max_hops", input("case-hops").value);
  const res = await post<{ case_id: string; status: string }>("/cases", form);
  caseId = res.case_id;
  await watchCase(res.case_id);
}

async function watchCase(id: string): Promise<void> {
  const progress = byId("case-progress");
  for (;;) {
    const st = await get<CaseStatus>(`/cases/${enc(id)}`);
    const p = st.progress;
    const frac = p && p.total ? ` ${p.done}/${p.total}` : p ? ` ${p.done}` : "";
    progress.textContent = `case ${st.case_id}: ${st.status}${p ? ` · ${p.step}${frac}` : ""}`;
    progress.dataset.status = st.status;
    if (st.status === "failed") throw new Error(st.error ?? "the investigation failed");
    if (st.status === "done") break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  await openCase(id);
}

async function openCase(id: string): Promise<void> {
  caseId = id;
  leads = await all<Row>(`/cases/${enc(id)}/leads`);
  const exchanges = [...new Set(leads.map((l) => l.source_entity).filter(Boolean))].sort();
  const filter = select("lead-exchange");
  clear(filter, el("option", { value: "" }, "every exchange"), ...exchanges.map((x) => el("option", { value: x }, x)));
  renderLeads();
  const files = await get<{ items: { name: string; size: number }[] }>(`/cases/${enc(id)}/files`);
  clear(
    byId("case-files"),
    ...files.items.map((f) => {
      const b = el("button", { type: "button", "data-file": f.name }, `${f.name} (${Math.ceil(f.size / 1024)} KiB)`);
      b.addEventListener("click", () => void run(`download ${f.name}`, async () => download(await getBlob(`/cases/${enc(id)}/files/${enc(f.name)}`), f.name)));
      return b;
    }),
  );
  await moneyFlow(id);
  byId("case-results").hidden = false;
}

async function moneyFlow(id: string): Promise<void> {
  const box = byId("money-flow");
  try {
    const blob = await getBlob(`/cases/${enc(id)}/money-flow.svg`);
    const img = el("img", { src: URL.createObjectURL(blob), alt: "Money flow: funding sources → the service → cash-outs", id: "money-flow-img" });
    clear(box, img);
  } catch (e) {
    clear(box, el("p", { class: "muted" }, `No money-flow picture: ${String(e)}`));
  }
}

function visibleLeads(): Row[] {
  const ex = select("lead-exchange").value;
  const minConf = Number(input("lead-confidence").value || "0");
  const rows = leads.filter((l) => (!ex || l.source_entity === ex) && Number(l.confidence || "0") >= minConf);
  const dir = sortDesc ? -1 : 1;
  rows.sort((a, b) => {
    const x = a[sortKey] ?? "";
    const y = b[sortKey] ?? "";
    const c = NUMERIC.has(sortKey) ? Number(x || "0") - Number(y || "0") : x.localeCompare(y);
    return c * dir;
  });
  return rows;
}

function renderLeads(): void {
  const rows = visibleLeads();
  const head = el("tr", {}, ...LEAD_SHOWN.map((k) => {
    const th = el("th", { "data-key": k, class: k === sortKey ? (sortDesc ? "desc" : "asc") : "" }, k.replace(/_/g, " "));
    th.addEventListener("click", () => {
      sortDesc = k === sortKey ? !sortDesc : true;
      sortKey = k;
      renderLeads();
    });
    return th;
  }));
  const body = el("tbody", {}, ...rows.map((l, i) => {
    const tr = el("tr", { "data-lead": String(i), title: "open this lead's path in the graph" },
      ...LEAD_SHOWN.map((k) => el("td", { class: NUMERIC.has(k) ? "num" : "" },
        k === "amount_sat" ? btc(Number(l[k])) : k === "amount_usd" ? usd(Number(l[k] || "0")) : k === "deposit_address" ? short(l[k]) : (l[k] ?? ""))));
    tr.addEventListener("click", () => void run("open lead", () => openLead(l)));
    return tr;
  }));
  clear(byId("leads"), el("p", { id: "leads-count" }, `${rows.length} of ${leads.length} leads`), el("table", { class: "rows", id: "leads-table" }, el("thead", {}, head), body));
}

/** Draw a lead's largest path as the API lays it out (`GET /cases/{id}/leads/{n}/graph`,
 *  `cases.lead_path.lead_graph`): the source address, the path's txs, the deposit. */
async function openLead(lead: Row): Promise<void> {
  if (caseId === null) throw new Error("no case is open");
  const n = leads.indexOf(lead); // the leads listing's order (file order), which the route takes
  const res = await get<LeadGraph>(`/cases/${enc(caseId)}/leads/${n}/graph`);
  // Nodes already on the canvas keep what they show (a pin, an analyst's label).
  const fresh = res.nodes.filter((x) => graph.cy.getElementById(x.id).empty());
  graph.addElements(`lead:${lead.deposit_address}:${lead.funding_txid}`, fresh, res.edges);
  for (const x of res.nodes) graph.cy.getElementById(x.id).data("lead", "1");
  graph.cy.getElementById(`address:${lead.deposit_address}`).addClass("seed");
  graph.layout();
  highlightPath(res.edges.map((e) => e.id));
  report(`lead: ${btc(Number(lead.amount_sat))} from ${lead.source_entity || "?"} in ${res.txids.length} txs`);
}

async function listCases(): Promise<void> {
  const page = await get<Page<CaseStatus>>("/cases", { limit: 50 });
  clear(byId("case-list"), ...page.items.map((c) => {
    const b = el("button", { type: "button", "data-case": c.case_id }, `${c.name ?? c.case_id} · ${c.status}`);
    b.addEventListener("click", () => void run("open case", () => (c.status === "done" ? openCase(c.case_id) : watchCase(c.case_id))));
    return b;
  }));
}

export function initTools(): void {
  byId("trace-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void run("trace", () => runTrace(false));
  });
  byId("path-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void run("path search", runPath);
  });
  byId("case-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void run("investigation", startCase);
  });
  byId("case-refresh").addEventListener("click", () => void run("cases", listCases));
  byId("lead-exchange").addEventListener("change", renderLeads);
  byId("lead-confidence").addEventListener("input", renderLeads);
  for (const tab of document.querySelectorAll<HTMLButtonElement>(".tabs button")) {
    tab.addEventListener("click", () => {
      for (const t of document.querySelectorAll<HTMLButtonElement>(".tabs button")) {
        t.classList.toggle("active", t === tab);
        byId(t.dataset.view as string).hidden = t !== tab;
      }
      document.body.dataset.view = tab.dataset.view;
      if (tab.dataset.view === "view-case") void run("cases", listCases);
    });
  }
}

export function currentCase(): string | null {
  return caseId;
}
