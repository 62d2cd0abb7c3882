// Export the canvas (PNG, SVG, a CSV of every tx on it) and save/reload a view as JSON.

import { type Page, type RelationTx, get, timeFilter, withTime } from "./api";
import { csvLine, download } from "./dom";
import * as graph from "./graph";
import { report } from "./status";

const VIEW_FORMAT = "chainsleuth-view/1";

export function exportPng(): void {
  const blob = graph.cy.png({ output: "blob", full: true, scale: 2, bg: "#ffffff" }) as Blob;
  download(blob, "chainsleuth-graph.png");
}

export function exportSvg(): void {
  const text = (graph.cy as unknown as { svg(o: object): string }).svg({ full: true, bg: "#ffffff" });
  download(new Blob([text], { type: "image/svg+xml" }), "chainsleuth-graph.svg");
}

/** One row per (edge, tx): single-tx edges as they are, aggregated edges paged through
 *  /graph/relation so every tx behind a sum is listed. */
export async function exportCsv(): Promise<number> {
  const lines = [csvLine(["source", "target", "txid", "height", "time", "value_sat", "usd"])];
  let n = 0;
  for (const e of graph.cy.edges().toArray()) {
    const d = e.data() as { source: string; target: string; txid?: string; n_txs: number; value: number; usd: number | null; first_height: number };
    if (d.n_txs <= 1 && d.txid) {
      lines.push(csvLine([d.source, d.target, d.txid, d.first_height, "", d.value, d.usd]));
      n += 1;
      continue;
    }
    let cursor: string | null = null;
    do {
      const page: Page<RelationTx> = await get<Page<RelationTx>>("/graph/relation", withTime({ source: d.source, target: d.target, limit: 1000, cursor }));
      for (const t of page.items) lines.push(csvLine([d.source, d.target, t.txid, t.height, t.time, t.value, t.usd]));
      n += page.items.length;
      cursor = page.next_cursor;
    } while (cursor);
  }
  download(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }), "chainsleuth-graph-txs.csv");
  return n;
}

/** The whole view: elements with positions and classes, the expansions and the filters. */
export function saveView(): void {
  const view = {
    format: VIEW_FORMAT,
    saved: new Date().toISOString(),
    time: { ...timeFilter },
    aggregate: graph.state.aggregate,
    minFlow: graph.state.minFlow,
    expansions: [...graph.state.expansions.values()],
    addedBy: [...graph.state.addedBy.entries()].map(([k, v]) => [k, [...v]]),
    elements: graph.cy.elements().jsons(),
    zoom: graph.cy.zoom(),
    pan: graph.cy.pan(),
  };
  download(new Blob([JSON.stringify(view, null, 1)], { type: "application/json" }), "chainsleuth-view.json");
}

export async function loadView(file: File): Promise<void> {
  const view = JSON.parse(await file.text());
  if (view.format !== VIEW_FORMAT) throw new Error(`${file.name}: not a chainsleuth view (format ${String(view.format)})`);
  graph.clearGraph();
  graph.cy.add(view.elements);
  graph.cy.nodes(".pinned").lock();
  for (const rec of view.expansions) graph.state.expansions.set(rec.key, rec);
  for (const [k, v] of view.addedBy as [string, string[]][]) graph.state.addedBy.set(k, new Set(v));
  graph.state.aggregate = Boolean(view.aggregate);
  graph.state.minFlow = Number(view.minFlow) || 0;
  Object.assign(timeFilter, view.time);
  graph.cy.zoom(view.zoom);
  graph.cy.pan(view.pan);
  graph.applyMinFlow();
  report(`loaded ${file.name}: ${graph.cy.nodes().length} nodes`);
}
