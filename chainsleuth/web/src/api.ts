// The REST API client: one `get`/`post` pair over fetch, the types of docs/design/api.md,
// the analyst's key (sessionStorage only) and the global time filter added to every call that
// takes one. Every request goes to this page's own origin (`/api/v1/...`).

const BASE = "/api/v1";
const KEY_STORAGE = "chainsleuth.apiKey";

export interface GraphNode {
  id: string;
  kind: "address" | "tx" | "cluster";
  label: string;
  category: string | null;
  entity: string | null;
  coinjoin: boolean;
  cluster_id?: number | null;
  height: number | null;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  value: number;
  usd: number | null;
  n_txs: number;
  first_height: number;
  last_height: number;
  txid?: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
  total: number | null;
}

export interface Expansion {
  node: GraphNode;
  nodes: GraphNode[];
  edges: GraphEdge[];
  next_cursor: string | null;
  total: number | null;
}

export interface Tag {
  address: string;
  label: string;
  category: string | null;
  actor: string | null;
  confidence: number;
  confidence_level: string;
  source: string;
  tagpack: string;
  abuse: string | null;
  note?: string | null; // the analyst's note (the tag's context)
  context?: string | null;
  cluster_id?: number | null;
}

export interface Attribution {
  cluster_id: number;
  actor: string | null;
  label: string | null;
  category: string | null;
  confidence: number | null;
  n_addresses: number;
  n_tagged_addresses: number;
  n_tags: number;
  tagpacks: string[];
  abuses: string[];
  conflict: boolean;
  conflicts: string[];
}

export interface Address {
  address: string;
  script_type: string;
  n_txs: number;
  received: number;
  sent: number;
  balance: number;
  first_seen_height: number;
  last_seen_height: number;
  first_seen_time: string;
  last_seen_time: string;
  cluster_id: number | null;
  cluster_size: number | null;
  coinjoin_txs: number;
  mixers: string[];
  tags: Tag[];
  attribution: Attribution | null;
}

export interface Merge {
  txid: string;
  rule: string;
  change_rules: string | null;
  confidence: number;
  from: string;
  to: string;
}

export interface Cluster {
  cluster_id: number;
  n_addresses: number;
  received: number;
  sent?: number;
  balance: number;
  first_seen_height: number | null;
  last_seen_height: number | null;
  rules: Record<string, number>;
  attribution: Attribution | null;
  tags: Page<Tag>; // the first page; GET /tags?cluster=ID&cursor=... continues it
  conflicts: string[];
  coinjoin_txs: number;
  mixers: string[];
  n_outputs?: number;
  policy?: string;
}

export interface TxIn {
  vin: number;
  is_coinbase: boolean;
  prev_txid: string | null;
  prev_vout: number | null;
  value: number;
  address: string | null;
}

export interface TxOut {
  vout: number;
  value: number;
  script_type: string;
  address: string | null;
  spent_by_txid: string | null;
}

export interface Tx {
  txid: string;
  block_height: number;
  block_time: string;
  n_inputs: number;
  n_outputs: number;
  fee: number | null;
  is_coinbase: boolean;
  inputs: TxIn[];
  outputs: TxOut[];
  usd_rate: number | null;
  coinjoin: { mixer: string } | null;
  change: { vout: number; address: string; rules: string[] } | null;
}

export interface SearchHit {
  kind: "address" | "tx" | "block" | "cluster" | "entity" | "tag";
  id: string;
  label: string;
  detail: string | null;
}

/** One tx behind an aggregated edge (`/graph/relation`). */
export interface RelationTx {
  txid: string;
  height: number;
  time: string;
  value: number;
  usd: number | null;
}

export interface TraceRow {
  output_id: number;
  address: string | null;
  txid: string;
  amount: number;
  hops: number;
  kind: string;
  entity: string | null;
  category: string | null;
  poison: boolean;
  low_confidence: boolean;
  path: string[];
}

export interface TraceResult extends Page<TraceRow> {
  graph?: { nodes: GraphNode[]; edges: GraphEdge[] };
}

export interface PathResult {
  found: boolean;
  status: string;
  n_hops: number | null;
  bottleneck: number | null;
  hops: { txid: string; from_node: string; to_node: string; amount_in: number; amount: number }[];
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface LeadGraph {
  txids: string[];
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface CaseStatus {
  case_id: string;
  name: string | null;
  status: "queued" | "running" | "done" | "failed";
  progress: { step: string; done: number; total: number | null } | null;
  created: string;
  finished: string | null;
  error: string | null;
  summary: Record<string, unknown> | null;
}

export type Row = Record<string, string>;

/** An error answered by the API in its error model, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

/** The global time filter (block height or YYYY-MM-DD, both ends included). */
export const timeFilter = { from: "", to: "" };

export function withTime(q: Query): Query {
  return { ...q, from: timeFilter.from || undefined, to: timeFilter.to || undefined };
}

export function apiKey(): string {
  return sessionStorage.getItem(KEY_STORAGE) ?? "";
}

export function setApiKey(key: string): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export function url(path: string, q: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === null || v === undefined || v === "") continue;
    params.set(k, String(v));
  }
  const qs = params.toString();
  return `${BASE}${path}${qs ? "?" + qs : ""}`;
}

function headers(): Record<string, string> {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function check(resp: Response): Promise<Response> {
  if (resp.ok) return resp;
  let code = "http_" + resp.status;
  let message = `${resp.status} ${resp.statusText}`;
  let field: string | null = null;
  try {
    const body = (await resp.json()) as { error?: { code: string; message: string; field: string | null } };
    if (body.error) ({ code, message, field } = body.error);
  } catch {
    // not the error model (e.g. a proxy's page): keep the status line
  }
  throw new ApiError(resp.status, code, message, field);
}

export async function get<T>(path: string, q: Query = {}): Promise<T> {
  const resp = await check(await fetch(url(path, q), { headers: headers() }));
  return (await resp.json()) as T;
}

export async function getBlob(path: string): Promise<Blob> {
  const resp = await check(await fetch(url(path), { headers: headers() }));
  return resp.blob();
}

export async function post<T>(path: string, body: unknown): Promise<T> {
  const init: RequestInit = { method: "POST", headers: headers() };
  if (body instanceof FormData) init.body = body;
  else {
    init.body = JSON.stringify(body);
    init.headers = { ...headers(), "Content-Type": "application/json" };
  }
  const resp = await check(await fetch(url(path), init));
  return (await resp.json()) as T;
}

/** Every page of a listing, following `next_cursor` (for tables the UI sorts and filters). */
export async function all<T>(path: string, q: Query = {}, limit = 1000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<T> = await get<Page<T>>(path, { ...q, limit, cursor });
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

export function enc(s: string): string {
  return encodeURIComponent(s);
}
