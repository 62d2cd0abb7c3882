// The canvas: Cytoscape.js with a left-to-right dagre layout. This file only draws what the
// API returns (nodes, edges, their amounts) and remembers which expansion added what, so an
// expansion can be collapsed, paged further, or replayed when the time filter or the
// aggregate toggle changes. It computes nothing about the chain itself.

import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";
import svg from "cytoscape-svg";

import { type Expansion, type GraphEdge, type GraphNode, enc, get, withTime } from "./api";
import { btcShort, short, usd } from "./dom";

cytoscape.use(dagre);
cytoscape.use(svg);

/** Colours of the tag taxonomy's categories (GraphSense's), and a fallback palette. */
export const CATEGORY_COLORS: Record<string, string> = {
  exchange: "#1f77b4",
  mixing_service: "#9467bd",
  coinjoin: "#9467bd",
  market: "#d62728",
  darknet_market: "#d62728",
  ransomware: "#b2182b",
  scam: "#e377c2",
  gambling: "#ff7f0e",
  miner: "#8c564b",
  mining_service: "#8c564b",
  wallet_service: "#17becf",
  payment_processor: "#2ca02c",
  defi: "#bcbd22",
};
const PALETTE = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354"];
const UNKNOWN = "#9aa3ad";

export function categoryColor(category: string | null | undefined): string {
  if (!category) return UNKNOWN;
  const known = CATEGORY_COLORS[category];
  if (known) return known;
  let h = 0;
  for (const ch of category) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

export type Direction = "in" | "out";

interface ExpansionRecord {
  key: string;
  node: string;
  direction: Direction;
  pages: number;
  loaded: number;
  total: number | null;
  next: string | null;
}

/** What the explorer remembers beside the canvas (saved with a view). */
export const state = {
  aggregate: true,
  pageSize: 50,
  minFlow: 0, // sat: edges below are hidden (not removed)
  expansions: new Map<string, ExpansionRecord>(),
  addedBy: new Map<string, Set<string>>(), // element id → the origins that added it
};

/** The canvas's rules at every size (`largeStyle` adds to them on a large canvas). */
const BASE_STYLE = [
  {
    selector: "node",
    style: {
      label: "data(display)",
      "font-size": 10,
      "min-zoomed-font-size": 7,
      "text-valign": "bottom",
      "text-margin-y": 3,
      "text-wrap": "wrap",
      "text-max-width": "140px",
      "background-color": "data(color)",
      width: 22,
      height: 22,
      color: "#1d2329",
    },
  },
  { selector: 'node[kind = "tx"]', style: { shape: "diamond", width: 14, height: 14 } },
  { selector: 'node[kind = "address"]', style: { shape: "round-rectangle" } },
  {
    selector: 'node[kind = "cluster"]',
    style: { shape: "ellipse", width: 38, height: 38, "font-weight": "bold" },
  },
  { selector: "node[?entity]", style: { "border-width": 3, "border-color": "#1d2329" } },
  { selector: "node[?coinjoin]", style: { "background-color": "#9467bd", shape: "hexagon" } },
  { selector: "node.pinned", style: { "border-width": 3, "border-style": "double", "border-color": "#e6a700" } },
  { selector: "node.seed", style: { "underlay-color": "#e6a700", "underlay-opacity": 0.25, "underlay-padding": 6 } },
  { selector: "node:selected", style: { "overlay-color": "#e6a700", "overlay-opacity": 0.35 } },
  {
    selector: "edge",
    style: {
      "curve-style": "bezier",
      "target-arrow-shape": "triangle",
      "line-color": "#8a96a3",
      "target-arrow-color": "#8a96a3",
      width: "data(width)",
      label: "data(display)",
      "font-size": 8,
      "min-zoomed-font-size": 8,
      "text-rotation": "autorotate",
      "text-background-color": "#ffffff",
      "text-background-opacity": 0.8,
      "text-background-padding": "1px",
      color: "#3c4650",
    },
  },
  { selector: "edge.path", style: { "line-color": "#e6550d", "target-arrow-color": "#e6550d" } },
  { selector: "edge:selected", style: { "line-color": "#e6a700", "target-arrow-color": "#e6a700" } },
  { selector: ".filtered", style: { display: "none" } },
];

export let cy: cytoscape.Core;

/** Above this many new nodes, an expansion is placed in columns beside its node (linear
 *  time) instead of re-running dagre over the whole canvas (which took ~0.7 s for 1,000 nodes
 *  on the bench machine, see docs/design/web.md). */
const LARGE_EXPANSION = 300;
/** Above this many nodes on the canvas the drawing gets cheaper (see `setDetail`): straight
 *  edges, and labels only on named, seed, pinned or selected nodes (the panel shows the rest). */
const LARGE_CANVAS = 500;
let detailed = true;
let lastAdded: string[] = [];
let selectHandler: (id: string | null) => void = () => undefined;

export function init(
  container: HTMLElement,
  onSelect: (id: string | null) => void,
  onEdge: (id: string) => void,
): cytoscape.Core {
  selectHandler = onSelect;
  cy = cytoscape({
    container,
    minZoom: 0.02,
    maxZoom: 4,
    style: [...BASE_STYLE, ...largeStyle(false)] as unknown as cytoscape.StylesheetStyle[],
  });
  cy.on("select", "node", (e) => onSelect(e.target.id()));
  cy.on("select", "edge", (e) => onEdge(e.target.id()));
  cy.on("unselect", "node", () => {
    if (cy.$("node:selected").empty()) onSelect(null);
  });
  (window as unknown as { cy: cytoscape.Core }).cy = cy;
  return cy;
}

/** The rules that change with the canvas's size: on a large canvas, edges are straight (no
 *  bezier control points to compute) and unnamed nodes and all arrows go without labels, so
 *  that adding 1,000 nodes measures no text. (Labels at that zoom would be too small to draw.) */
function largeStyle(large: boolean): cytoscape.StylesheetStyle[] {
  if (!large) return [];
  return [
    { selector: "edge", style: { "curve-style": "straight", label: "" } },
    { selector: "node", style: { label: "" } },
    { selector: "node[?entity], node.seed, node.pinned, node:selected", style: { label: "data(display)" } },
    { selector: "edge:selected", style: { label: "data(display)" } },
  ] as cytoscape.StylesheetStyle[];
}

/** Switch the canvas between full detail and the cheap drawing of `largeStyle` when its node
 *  count crosses LARGE_CANVAS; called before elements are added, so that they are styled once. */
function setDetail(nodeCount: number): void {
  const want = nodeCount <= LARGE_CANVAS;
  if (want === detailed) return;
  detailed = want;
  cy.style([...BASE_STYLE, ...largeStyle(!want)] as unknown as cytoscape.StylesheetStyle[]);
}

function nodeData(n: GraphNode): Record<string, unknown> {
  const name = n.entity ?? (n.kind === "cluster" ? n.label : null);
  const base = n.kind === "tx" ? short(n.label, 5) : short(n.label, 6);
  const display = name && name !== n.label ? `${name}\n${base}` : base;
  return { ...n, display, color: categoryColor(n.category) };
}

function edgeData(e: GraphEdge): Record<string, unknown> {
  const count = e.n_txs > 1 ? ` · ${e.n_txs} txs` : "";
  const dollars = usd(e.usd);
  const display = `${btcShort(e.value)}${dollars ? " " + dollars : ""}${count}`;
  const width = Math.min(8, 1 + Math.log10(1 + e.value / 1e6));
  return { ...e, display, width };
}

/** Add nodes and edges (those already drawn are refreshed, not duplicated) for `origin`. */
export function addElements(origin: string, nodes: GraphNode[], edges: GraphEdge[]): void {
  // New elements go in with one `cy.add` (one style pass and one bounds update for all of
  // them); those already drawn get their data refreshed.
  const added: cytoscape.ElementDefinition[] = [];
  const ids = new Set<string>();
  cy.batch(() => {
    for (const n of nodes) {
      const existing = cy.getElementById(n.id);
      if (existing.nonempty()) existing.data(nodeData(n));
      else if (!ids.has(n.id)) added.push({ group: "nodes", data: nodeData(n) });
      ids.add(n.id);
      mark(n.id, origin);
    }
    const there = (id: string) => ids.has(id) || cy.getElementById(id).nonempty();
    for (const e of edges) {
      if (!there(e.source) || !there(e.target)) continue;
      const existing = cy.getElementById(e.id);
      if (existing.nonempty()) existing.data(edgeData(e));
      else if (!ids.has(e.id)) added.push({ group: "edges", data: edgeData(e) });
      ids.add(e.id);
      mark(e.id, origin);
    }
    setDetail(cy.nodes().length + added.filter((x) => x.group === "nodes").length);
    if (added.length) cy.add(added);
  });
  applyMinFlow();
  legend();
}

/** The categories on the canvas and their colours. */
function legend(): void {
  const box = document.getElementById("legend");
  if (!box) return;
  const cats = new Set<string>();
  cy.nodes().forEach((n) => {
    const c = n.data("category") as string | null;
    if (c) cats.add(c);
  });
  box.replaceChildren(
    ...[...cats].sort().map((c) => {
      const item = document.createElement("span");
      item.className = "legend-item";
      item.dataset.color = categoryColor(c);
      const swatch = document.createElement("i");
      // a colour from our own palette, set as a DOM property (allowed by the CSP; no inline style)
      swatch.style.backgroundColor = categoryColor(c);
      item.append(swatch, c.replace(/_/g, " "));
      return item;
    }),
  );
}

function mark(id: string, origin: string): void {
  let set = state.addedBy.get(id);
  if (!set) state.addedBy.set(id, (set = new Set()));
  set.add(origin);
}

/** Put a node on the canvas as a starting point (search, trace target, a lead). */
export function addSeed(n: GraphNode): void {
  addElements("seed", [n], []);
  cy.getElementById(n.id).addClass("seed");
}

export function expansionKey(node: string, direction: Direction): string {
  return `expand:${node}:${direction}`;
}

export function expansion(node: string, direction: Direction): ExpansionRecord | undefined {
  return state.expansions.get(expansionKey(node, direction));
}

/** Expand `node` one hop (`in`: where its money came from, `out`: where it went). With
 *  `more`, load the next page of an expansion already drawn (no silent top-N). */
export async function expand(node: string, direction: Direction, more = false): Promise<ExpansionRecord> {
  const key = expansionKey(node, direction);
  let rec = state.expansions.get(key);
  if (rec && !more) return rec;
  if (rec && more && !rec.next) return rec;
  const page = await get<Expansion>("/graph/expand", withTime({
    node,
    direction,
    aggregate: state.aggregate,
    limit: state.pageSize,
    cursor: more && rec ? rec.next : undefined,
  }));
  if (!rec) {
    rec = { key, node, direction, pages: 0, loaded: 0, total: page.total, next: null };
    state.expansions.set(key, rec);
  }
  rec.pages += 1;
  rec.loaded += page.edges.length;
  rec.total = page.total;
  rec.next = page.next_cursor;
  lastAdded = page.nodes.map((n) => n.id).filter((id) => cy.getElementById(id).empty());
  addElements(key, [page.node, ...page.nodes], page.edges);
  return rec;
}

/** Lay out after `expand`: dagre over the canvas, or for a large expansion its new nodes in
 *  columns to the right (out) or left (in) of the expanded node, the rest left in place. */
export function layoutExpansion(node: string, direction: Direction): void {
  const added = new Set(lastAdded);
  const fresh = cy.nodes().filter((n: cytoscape.NodeSingular) => added.has(n.id()));
  if (fresh.length <= LARGE_EXPANSION) {
    layout();
    return;
  }
  const at = cy.getElementById(node).position();
  const side = direction === "out" ? 1 : -1;
  const perColumn = 250;
  const gap = 28;
  cy.batch(() => {
    fresh.forEach((n, i) => {
      const col = Math.floor(i / perColumn);
      const row = i % perColumn;
      const rows = Math.min(perColumn, fresh.length - col * perColumn);
      n.position({ x: at.x + side * (260 + col * 220), y: at.y + (row - (rows - 1) / 2) * gap });
    });
  });
  cy.fit(undefined, 30);
}

/** Remove what an expansion added, except nodes that something else also added or that
 *  are pinned. */
export function collapse(node: string, direction: Direction): void {
  const key = expansionKey(node, direction);
  if (!state.expansions.delete(key)) return;
  cy.batch(() => {
    for (const [id, origins] of state.addedBy) {
      if (!origins.delete(key) || origins.size > 0) continue;
      const ele = cy.getElementById(id);
      if (ele.isNode() && (ele.hasClass("pinned") || ele.hasClass("seed"))) {
        origins.add("seed");
        continue;
      }
      ele.remove();
      state.addedBy.delete(id);
    }
    setDetail(cy.nodes().length);
  });
}

export function togglePin(id: string): boolean {
  const n = cy.getElementById(id);
  if (n.hasClass("pinned")) {
    n.removeClass("pinned");
    n.unlock();
    return false;
  }
  n.addClass("pinned");
  n.lock();
  return true;
}

/** Hide (not remove) edges under the threshold, and the nodes left with no visible edge. */
export function applyMinFlow(): void {
  cy.batch(() => {
    cy.$(".filtered").removeClass("filtered");
    if (state.minFlow <= 0) return;
    cy.edges().filter((e) => (e.data("value") as number) < state.minFlow).addClass("filtered");
    cy.nodes()
      .filter((n: cytoscape.NodeSingular) => !n.hasClass("seed") && !n.hasClass("pinned") && !n.selected())
      .filter((n: cytoscape.NodeSingular) => n.connectedEdges().nonempty() && n.connectedEdges().not(".filtered").empty())
      .addClass("filtered");
  });
}

/** Redo every expansion (first pages, same order) after the time filter or the aggregate
 *  toggle changed; what traces, paths and leads drew stays. */
export async function replay(): Promise<void> {
  const recs = [...state.expansions.values()];
  for (const rec of recs) collapse(rec.node, rec.direction);
  for (const rec of recs) {
    if (cy.getElementById(rec.node).nonempty()) await expand(rec.node, rec.direction);
  }
  layout();
}

export function layout(fit = true): void {
  cy.layout({
    name: "dagre",
    rankDir: "LR",
    nodeSep: 18,
    rankSep: 110,
    edgeSep: 8,
    fit,
    padding: 30,
    animate: false,
  } as cytoscape.LayoutOptions).run();
}

export function clearGraph(): void {
  cy.elements().remove();
  setDetail(0);
  state.expansions.clear();
  state.addedBy.clear();
  selectHandler(null); // the side panel spoke of a node that is gone
}

/** The node of an address, tx or cluster, for starting points the API names by string. */
export async function fetchNode(id: string): Promise<GraphNode> {
  const page = await get<Expansion>("/graph/expand", withTime({ node: id, direction: "out", limit: 1 }));
  return page.node;
}

export function nodeIdOf(kind: string, id: string): string {
  return id.includes(":") ? id : `${kind}:${id}`;
}

export function encNode(id: string): string {
  return enc(id);
}
