// Entry point: wires the search box, the global filters, the toolbar and the API key field
// to the canvas (graph.ts), the side panel (panel.ts) and the tool views (tools.ts).

import { ApiError, type SearchHit, apiKey, get, setApiKey, timeFilter } from "./api";
import { byId, clear, el, parseBtc } from "./dom";
import * as exporter from "./export";
import * as graph from "./graph";
import * as panel from "./panel";
import { report, run } from "./status";
import { initTools } from "./tools";

function input(id: string): HTMLInputElement {
  return byId<HTMLInputElement>(id);
}

async function search(): Promise<void> {
  const q = input("search").value.trim();
  if (!q) return;
  const res = await get<{ items: SearchHit[] }>("/search", { q, limit: 20 });
  const list = byId("search-results");
  if (!res.items.length) {
    clear(list, el("li", { class: "muted" }, `Nothing found for "${q}".`));
    return;
  }
  clear(list, ...res.items.map((hit) => {
    const b = el("button", { type: "button", "data-id": hit.id, "data-kind": hit.kind }, `${hit.kind}: ${hit.label}`, hit.detail ? el("small", {}, ` ${hit.detail}`) : null);
    b.addEventListener("click", () => void run(`open ${hit.label}`, () => openHit(hit)));
    return el("li", {}, b);
  }));
  // An exact address/tx/cluster match (the API lists exact matches first): open it at once.
  const first = res.items[0];
  const exact = first.label === q || first.id === q || first.id.endsWith(":" + q);
  if (["address", "tx", "cluster"].includes(first.kind) && (exact || res.items.length === 1)) {
    await openHit(first);
  }
}

async function openHit(hit: SearchHit): Promise<void> {
  clear(byId("search-results"));
  if (hit.kind === "block" || hit.kind === "entity" || hit.kind === "tag") {
    report(`${hit.kind} ${hit.label}: ${hit.detail ?? ""} (open one of its addresses, txs or wallets)`);
    return;
  }
  const id = graph.nodeIdOf(hit.kind, hit.id);
  graph.addSeed(await graph.fetchNode(id));
  graph.layout();
  graph.cy.$(":selected").unselect();
  graph.cy.getElementById(id).select();
}

async function applyFilters(): Promise<void> {
  timeFilter.from = input("from").value.trim();
  timeFilter.to = input("to").value.trim();
  graph.state.aggregate = input("aggregate").checked;
  graph.state.pageSize = Number(input("page-size").value) || 50;
  graph.state.minFlow = parseBtc(input("min-flow").value);
  await graph.replay();
  await panel.show(panel.selected());
}

async function whoAmI(): Promise<void> {
  try {
    const me = await get<{ key_id: string; scope: string; auth: string }>("/me");
    byId("me").textContent = me.auth === "open" ? "local (open)" : `${me.key_id} · ${me.scope}`;
  } catch (e) {
    const needKey = e instanceof ApiError && (e.status === 401 || e.status === 403);
    byId("me").textContent = needKey ? "key needed" : "API unreachable";
    report(`API: ${String((e as Error).message)}${needKey ? ": enter an API key" : ""}`, true);
  }
}

function init(): void {
  graph.init(
    byId("cy"),
    (id) => void run("details", () => panel.show(id)),
    (id) => void run("flow", () => panel.showEdge(id)),
  );
  void panel.show(null);
  initTools();
  input("api-key").value = apiKey();
  byId("key-form").addEventListener("submit", (e) => e.preventDefault());
  input("api-key").addEventListener("change", () => {
    setApiKey(input("api-key").value.trim());
    void whoAmI();
  });
  byId("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void run("search", search);
  });
  byId("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    void run("apply filters", applyFilters);
  });
  input("aggregate").addEventListener("change", () => void run("apply filters", applyFilters));
  input("min-flow").addEventListener("change", () => {
    try {
      graph.state.minFlow = parseBtc(input("min-flow").value);
      graph.applyMinFlow();
      report(`hiding flows under ${input("min-flow").value || 0} BTC`);
    } catch (e) {
      report(String(e), true);
    }
  });
  byId("btn-layout").addEventListener("click", () => graph.layout());
  byId("btn-clear").addEventListener("click", () => graph.clearGraph());
  byId("btn-png").addEventListener("click", () => void run("export PNG", async () => exporter.exportPng()));
  byId("btn-svg").addEventListener("click", () => void run("export SVG", async () => exporter.exportSvg()));
  byId("btn-csv").addEventListener("click", () => void run("export CSV", exporter.exportCsv));
  byId("btn-save").addEventListener("click", () => exporter.saveView());
  input("file-load").addEventListener("change", () => {
    const f = input("file-load").files?.[0];
    if (f) void run("load view", () => exporter.loadView(f));
  });
  void whoAmI();
  document.body.dataset.ready = "1";
}

init();
