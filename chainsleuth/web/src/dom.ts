// Small DOM and number-formatting helpers. Text is always set with textContent (never
// innerHTML), so addresses, labels and notes from the API cannot inject markup.

export type Child = Node | string | null | undefined | false;

/** `el("td", {class: "num"}, "1.5 BTC")`: an element with attributes and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from index.html`);
  return node as T;
}

export function clear(node: HTMLElement, ...children: Child[]): void {
  node.replaceChildren();
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
}

const SAT = 100_000_000;

/** Satoshis as BTC with up to 8 decimals, trailing zeros trimmed ("0.5 BTC"). */
export function btc(sat: number | null | undefined): string {
  if (sat === null || sat === undefined) return "–";
  const whole = Math.trunc(sat / SAT);
  const frac = Math.abs(sat % SAT).toString().padStart(8, "0").replace(/0+$/, "");
  const sign = sat < 0 && whole === 0 ? "-" : "";
  return `${sign}${whole.toLocaleString("en-US")}${frac ? "." + frac : ""} BTC`;
}

/** A short BTC figure for edge labels (at most 4 significant decimals). */
export function btcShort(sat: number): string {
  const v = sat / SAT;
  if (v >= 100) return `${v.toLocaleString("en-US", { maximumFractionDigits: 0 })} BTC`;
  if (v >= 1) return `${v.toFixed(2)} BTC`;
  return `${v.toPrecision(3)} BTC`;
}

export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return "";
  return "$" + value.toLocaleString("en-US", { maximumFractionDigits: 0 });
}

/** A long id cut in the middle for labels: "bc1qxy…0wlh". */
export function short(id: string, keep = 6): string {
  return id.length <= keep * 2 + 1 ? id : `${id.slice(0, keep)}…${id.slice(-keep)}`;
}

/** BTC typed by the analyst ("0.01") as satoshis; empty → 0. */
export function parseBtc(text: string): number {
  const t = text.trim();
  if (!t) return 0;
  const v = Number(t);
  if (!Number.isFinite(v) || v < 0) throw new Error(`not an amount in BTC: ${t}`);
  return Math.round(v * SAT);
}

/** Save a Blob as a file through a temporary blob: link (no request leaves the page). */
export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function csvLine(values: (string | number | null | undefined)[]): string {
  return values
    .map((v) => {
      const s = v === null || v === undefined ? "" : String(v);
      return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    })
    .join(",");
}
