/**
 * Choosing command multicast members by label group: an equality selector
 * (`{ role: "host", rack: "r1" }`, or the text form `role=host,rack=r1`)
 * matches a node when every pair matches its labels. The empty selector
 * matches every node. Results keep the order of the node list, so the same
 * inputs always give the same members.
 */
export type LabelSelector = Readonly<Record<string, string>>;

export interface LabelledNode {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
}

export const maxSelectorPairs = 16;
export const maxLabelTextLength = 64;

const labelTextPattern = /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/;

export type SelectorParse = { readonly ok: true; readonly selector: LabelSelector } | { readonly ok: false; readonly error: string };

function checkText(kind: string, text: string): string | undefined {
  if (text.length === 0 || text.length > maxLabelTextLength || !labelTextPattern.test(text)) {
    return `invalid label ${kind} ${JSON.stringify(text.slice(0, maxLabelTextLength))}: 1-${maxLabelTextLength} of [A-Za-z0-9_.-], starting and ending alphanumeric`;
  }
  return undefined;
}

/** Checks a selector given as an object (from configuration or the network). */
export function checkSelector(selector: LabelSelector): SelectorParse {
  const pairs = Object.entries(selector);
  if (pairs.length > maxSelectorPairs) return { ok: false, error: `selector has ${pairs.length} pairs, at most ${maxSelectorPairs}` };
  const checked: Record<string, string> = {};
  for (const [key, value] of pairs) {
    const problem = checkText("key", key) ?? (typeof value === "string" ? checkText("value", value) : `label value of ${key} is not a string`);
    if (problem) return { ok: false, error: problem };
    checked[key] = value;
  }
  return { ok: true, selector: checked };
}

/** Parses `key=value,key=value` (spaces around tokens allowed); an empty text is the empty selector. */
export function parseSelector(text: string): SelectorParse {
  const trimmed = text.trim();
  if (trimmed.length === 0) return { ok: true, selector: {} };
  const parts = trimmed.split(",");
  if (parts.length > maxSelectorPairs) return { ok: false, error: `selector has ${parts.length} pairs, at most ${maxSelectorPairs}` };
  const selector: Record<string, string> = {};
  for (const part of parts) {
    const equals = part.indexOf("=");
    if (equals < 0) return { ok: false, error: `selector pair ${JSON.stringify(part.trim().slice(0, maxLabelTextLength))} lacks "="` };
    const key = part.slice(0, equals).trim();
    const value = part.slice(equals + 1).trim();
    const problem = checkText("key", key) ?? checkText("value", value);
    if (problem) return { ok: false, error: problem };
    if (Object.prototype.hasOwnProperty.call(selector, key) && selector[key] !== value) {
      return { ok: false, error: `label key ${key} given twice with different values` };
    }
    selector[key] = value;
  }
  return { ok: true, selector };
}

/** Ids of the nodes whose labels contain every pair of the selector, in list order, each once. */
export function resolveLabelSelector(selector: LabelSelector, nodes: readonly LabelledNode[]): string[] {
  const pairs = Object.entries(selector);
  const chosen = new Set<string>();
  for (const node of nodes) {
    if (chosen.has(node.id)) continue;
    if (pairs.every(([key, value]) => Object.prototype.hasOwnProperty.call(node.labels, key) && node.labels[key] === value)) {
      chosen.add(node.id);
    }
  }
  return [...chosen];
}
