// The status line: what the explorer is doing, and the API's one-line errors.

import { ApiError } from "./api";
import { byId } from "./dom";

let busy = 0;

export function report(text: string, isError = false): void {
  const line = byId("status");
  line.textContent = text;
  line.classList.toggle("error", isError);
}

/** Run an action for a button: show it as busy, and any error in the status line (an
 *  expected API refusal is not a console error: it is the answer, shown to the analyst). */
export async function run<T>(what: string, action: () => Promise<T>): Promise<T | undefined> {
  busy += 1;
  document.body.dataset.busy = String(busy);
  report(`${what}…`);
  try {
    const result = await action();
    report(`${what}: done`);
    return result;
  } catch (e) {
    const msg = e instanceof ApiError ? `${e.message}${e.field ? ` (${e.field})` : ""}` : String(e);
    report(`${what}: ${msg}`, true);
    return undefined;
  } finally {
    busy -= 1;
    document.body.dataset.busy = String(busy);
  }
}
