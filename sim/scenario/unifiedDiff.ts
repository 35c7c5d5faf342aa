/**
 * A unified diff of two texts, line by line, as `diff -u` prints it: the
 * shortest edit script (Myers' O(ND) algorithm, after the common head and tail
 * are set aside), three lines of context, `@@ -a,b +c,d @@` hunk headers.
 *
 * Bounded: past `maxDiffEdits` changed lines the middle is shown as one
 * replaced block instead of searched for a minimal script, and the output
 * stops after `maxDiffOutputLines` lines with a note of what was left out.
 */

export const maxDiffEdits = 2_000;
export const maxDiffOutputLines = 2_000;
const contextLines = 3;

type Operation = { readonly type: "equal" | "delete" | "insert"; readonly expectedIndex: number; readonly actualIndex: number };

export interface UnifiedDiffOptions {
  readonly expectedName?: string;
  readonly actualName?: string;
}

function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  else lines[lines.length - 1] += "\n\\ No newline at end of file";
  return lines;
}

/** Myers' forward search with the frontier of every round kept for the way back; undefined when more than maxEdits are needed. */
function shortestEditScript(a: readonly string[], b: readonly string[], maxEdits: number): Operation[] | undefined {
  const n = a.length;
  const m = b.length;
  const limit = Math.min(n + m, maxEdits);
  const offset = limit + 1;
  const frontier = new Int32Array(2 * limit + 3);
  frontier[offset + 1] = 0;
  const rounds: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= limit && found < 0; d++) {
    // keep k in [-d-1, d+1] as it was before this round, for the backtrack
    rounds.push(frontier.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && frontier[offset + k - 1]! < frontier[offset + k + 1]!) ? frontier[offset + k + 1]! : frontier[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      frontier[offset + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return undefined;
  const operations: Operation[] = [];
  let x = n;
  let y = m;
  for (let d = found; d >= 0; d--) {
    const round = rounds[d]!;
    const at = (k: number) => round[k + d + 1]!;
    const k = x - y;
    const previousK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const previousX = d === 0 ? 0 : at(previousK);
    const previousY = d === 0 ? 0 : previousX - previousK;
    while (x > previousX && y > previousY) {
      x--;
      y--;
      operations.push({ type: "equal", expectedIndex: x, actualIndex: y });
    }
    if (d > 0) {
      if (x === previousX) operations.push({ type: "insert", expectedIndex: previousX, actualIndex: previousY });
      else operations.push({ type: "delete", expectedIndex: previousX, actualIndex: previousY });
    }
    x = previousX;
    y = previousY;
  }
  return operations.reverse();
}

function wholesaleReplacement(n: number, m: number): Operation[] {
  const operations: Operation[] = [];
  for (let index = 0; index < n; index++) operations.push({ type: "delete", expectedIndex: index, actualIndex: 0 });
  for (let index = 0; index < m; index++) operations.push({ type: "insert", expectedIndex: n, actualIndex: index });
  return operations;
}

/** "" when the texts are equal. */
export function unifiedDiff(expected: string, actual: string, options: UnifiedDiffOptions = {}): string {
  if (expected === actual) return "";
  const a = splitLines(expected);
  const b = splitLines(actual);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const middleA = a.slice(head, a.length - tail);
  const middleB = b.slice(head, b.length - tail);
  const middle = shortestEditScript(middleA, middleB, maxDiffEdits) ?? wholesaleReplacement(middleA.length, middleB.length);
  const operations: Operation[] = [];
  for (let index = 0; index < head; index++) operations.push({ type: "equal", expectedIndex: index, actualIndex: index });
  for (const operation of middle) operations.push({ type: operation.type, expectedIndex: operation.expectedIndex + head, actualIndex: operation.actualIndex + head });
  for (let index = 0; index < tail; index++) operations.push({ type: "equal", expectedIndex: a.length - tail + index, actualIndex: b.length - tail + index });

  const output = [`--- ${options.expectedName ?? "expected"}`, `+++ ${options.actualName ?? "actual"}`];
  let omitted = 0;
  const emit = (line: string) => {
    if (output.length < maxDiffOutputLines) output.push(line);
    else omitted++;
  };
  let index = 0;
  while (index < operations.length) {
    if (operations[index]!.type === "equal") {
      index++;
      continue;
    }
    // a hunk: context before, changes joined while the equal runs between them are short, context after
    const start = Math.max(0, index - contextLines);
    let end = index;
    for (;;) {
      while (end < operations.length && operations[end]!.type !== "equal") end++;
      let equalRun = 0;
      while (end + equalRun < operations.length && operations[end + equalRun]!.type === "equal") equalRun++;
      if (end + equalRun < operations.length && equalRun <= 2 * contextLines) end += equalRun;
      else {
        end = Math.min(operations.length, end + contextLines);
        break;
      }
    }
    const hunk = operations.slice(start, end);
    const first = hunk[0]!;
    const expectedCount = hunk.filter((operation) => operation.type !== "insert").length;
    const actualCount = hunk.filter((operation) => operation.type !== "delete").length;
    const range = (startIndex: number, count: number) => `${count === 0 ? startIndex : startIndex + 1},${count}`;
    emit(`@@ -${range(first.expectedIndex, expectedCount)} +${range(first.actualIndex, actualCount)} @@`);
    for (const operation of hunk) {
      if (operation.type === "equal") emit(` ${a[operation.expectedIndex]}`);
      else if (operation.type === "delete") emit(`-${a[operation.expectedIndex]}`);
      else emit(`+${b[operation.actualIndex]}`);
    }
    index = end;
  }
  if (omitted > 0) output.push(`... ${omitted} more diff lines not shown`);
  return `${output.join("\n")}\n`;
}
