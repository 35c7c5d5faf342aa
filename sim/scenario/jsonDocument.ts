/**
 * JSON with line numbers, for scenario files people write by hand.
 *
 * `JSON.parse` cannot say on which line a wrong value sits, and it silently
 * keeps the last of two equal keys; this parser keeps the line and column of
 * every value and refuses duplicate keys, so an error can point at the line
 * to fix. Input is bounded in size and nesting depth; the parser never throws.
 */

export const maxJsonDocumentBytes = 8 * 1024 * 1024;
export const maxJsonNestingDepth = 32;

export interface JsonPosition {
  readonly line: number;
  readonly column: number;
}

export type JsonNode =
  | (JsonPosition & { readonly kind: "object"; readonly entries: ReadonlyMap<string, JsonNode> })
  | (JsonPosition & { readonly kind: "array"; readonly items: readonly JsonNode[] })
  | (JsonPosition & { readonly kind: "string"; readonly value: string })
  | (JsonPosition & { readonly kind: "number"; readonly value: number })
  | (JsonPosition & { readonly kind: "boolean"; readonly value: boolean })
  | (JsonPosition & { readonly kind: "null" });

export type JsonParseResult =
  | { readonly ok: true; readonly root: JsonNode }
  | { readonly ok: false; readonly line: number; readonly column: number; readonly message: string };

class JsonSyntaxError {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

const escapes: Readonly<Record<string, string>> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** What a value looks like in an error message: short, and never the whole document. */
export function describeJsonNode(node: JsonNode): string {
  switch (node.kind) {
    case "object":
      return "an object";
    case "array":
      return "an array";
    case "string":
      return JSON.stringify(node.value.length > 40 ? `${node.value.slice(0, 40)}…` : node.value);
    case "number":
      return String(node.value);
    case "boolean":
      return String(node.value);
    case "null":
      return "null";
  }
}

export function parseJsonDocument(text: string): JsonParseResult {
  // line starts, so any offset maps to line:column
  const lineStarts = [0];
  for (let index = 0; index < text.length; index++) if (text.charCodeAt(index) === 10) lineStarts.push(index + 1);
  const positionOf = (offset: number): JsonPosition => {
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (lineStarts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: offset - lineStarts[low]! + 1 };
  };
  if (text.length > maxJsonDocumentBytes) return { ok: false, line: 1, column: 1, message: `the document is larger than ${maxJsonDocumentBytes} bytes` };

  let offset = 0;
  const fail = (message: string, at = offset): never => {
    throw new JsonSyntaxError(at, message);
  };
  const skipWhitespace = () => {
    while (offset < text.length) {
      const code = text.charCodeAt(offset);
      if (code === 32 || code === 9 || code === 10 || code === 13) offset++;
      else break;
    }
  };
  const describeHere = () => (offset >= text.length ? "the end of the file" : JSON.stringify(text.slice(offset, offset + 12)));

  const parseString = (): string => {
    const start = offset;
    offset++; // opening quote
    let value = "";
    for (;;) {
      if (offset >= text.length) fail("a string is not closed", start);
      const char = text[offset]!;
      if (char === '"') {
        offset++;
        return value;
      }
      if (char === "\\") {
        const escape = text[offset + 1];
        if (escape === "u") {
          const hex = text.slice(offset + 2, offset + 6);
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) fail("expected four hex digits after \\u");
          value += String.fromCharCode(parseInt(hex, 16));
          offset += 6;
          continue;
        }
        const replacement = escape === undefined ? undefined : escapes[escape];
        if (replacement === undefined) fail(`unknown escape \\${escape ?? ""}`);
        value += replacement;
        offset += 2;
        continue;
      }
      if (char.charCodeAt(0) < 0x20) fail("a control character inside a string (a line break needs \\n)");
      value += char;
      offset++;
    }
  };

  const parseValue = (depth: number): JsonNode => {
    skipWhitespace();
    if (depth > maxJsonNestingDepth) fail(`nested deeper than ${maxJsonNestingDepth} levels`);
    const start = offset;
    const position = positionOf(start);
    const char = text[offset];
    if (char === "{") {
      offset++;
      const entries = new Map<string, JsonNode>();
      skipWhitespace();
      if (text[offset] === "}") {
        offset++;
        return { kind: "object", entries, ...position };
      }
      for (;;) {
        skipWhitespace();
        if (text[offset] !== '"') fail(`expected a "key" in quotes, found ${describeHere()}`);
        const keyOffset = offset;
        const key = parseString();
        if (entries.has(key)) fail(`the key "${key}" appears twice in one object`, keyOffset);
        skipWhitespace();
        if (text[offset] !== ":") fail(`expected ":" after "${key}", found ${describeHere()}`);
        offset++;
        entries.set(key, parseValue(depth + 1));
        skipWhitespace();
        if (text[offset] === ",") {
          offset++;
          continue;
        }
        if (text[offset] === "}") {
          offset++;
          return { kind: "object", entries, ...position };
        }
        fail(`expected "," or "}" in an object, found ${describeHere()}`);
      }
    }
    if (char === "[") {
      offset++;
      const items: JsonNode[] = [];
      skipWhitespace();
      if (text[offset] === "]") {
        offset++;
        return { kind: "array", items, ...position };
      }
      for (;;) {
        items.push(parseValue(depth + 1));
        skipWhitespace();
        if (text[offset] === ",") {
          offset++;
          continue;
        }
        if (text[offset] === "]") {
          offset++;
          return { kind: "array", items, ...position };
        }
        fail(`expected "," or "]" in an array, found ${describeHere()}`);
      }
    }
    if (char === '"') return { kind: "string", value: parseString(), ...position };
    const number = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(offset, offset + 64));
    if (number) {
      offset += number[0].length;
      const value = Number(number[0]);
      if (!Number.isFinite(value)) fail(`the number ${number[0]} is out of range`, start);
      return { kind: "number", value, ...position };
    }
    for (const [word, node] of [
      ["true", { kind: "boolean", value: true }],
      ["false", { kind: "boolean", value: false }],
      ["null", { kind: "null" }],
    ] as const) {
      if (text.startsWith(word, offset)) {
        offset += word.length;
        return { ...node, ...position };
      }
    }
    return fail(`expected a value (object, array, string, number, true, false or null), found ${describeHere()}`);
  };

  try {
    const root = parseValue(0);
    skipWhitespace();
    if (offset < text.length) fail(`unexpected ${describeHere()} after the end of the document`);
    return { ok: true, root };
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    const position = positionOf(error.offset);
    return { ok: false, line: position.line, column: position.column, message: error.message };
  }
}
