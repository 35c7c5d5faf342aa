/**
 * Reads a scenario directory: cluster.json, commands and (if present)
 * expected.log. Files are size-bounded and must be UTF-8 text; every problem
 * comes back as `file:line: message`, never as an exception.
 */
import { readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { maxJsonDocumentBytes } from "./jsonDocument.ts";
import { parseCluster, type ParseResult } from "./parseCluster.ts";
import { maxCommandFileLines, maxCommandLineLength, parseCommands } from "./parseCommands.ts";
import { clusterFileName, commandsFileName, expectedLogFileName, type Scenario, type ScenarioProblem } from "./scenarioTypes.ts";

/** An expected log this long would take longer to diff than to read; scenarios stay small. */
export const maxExpectedLogBytes = 64 * 1024 * 1024;
const maxCommandsFileBytes = maxCommandFileLines * (maxCommandLineLength + 1);

type ReadOutcome = { readonly text: string } | { readonly missing: true } | { readonly problem: string };

function readTextFile(path: string, maxBytes: number): ReadOutcome {
  try {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat === undefined) return { missing: true };
    if (!stat.isFile()) return { problem: "is not a regular file" };
    if (stat.size > maxBytes) return { problem: `is ${stat.size} bytes, more than ${maxBytes}` };
    const bytes = readFileSync(path);
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return { text };
  } catch (error) {
    if (error instanceof TypeError) return { problem: "is not UTF-8 text" };
    return { problem: `cannot be read: ${error instanceof Error ? error.message : String(error)}` };
  }
}

export function loadScenario(directory: string): ParseResult<Scenario> {
  const name = basename(resolve(directory));
  const directoryStat = statSync(directory, { throwIfNoEntry: false });
  if (directoryStat === undefined || !directoryStat.isDirectory()) {
    return { ok: false, problems: [{ file: directory, line: undefined, message: "is not a scenario directory (one holding cluster.json and commands)" }] };
  }
  const problems: ScenarioProblem[] = [];
  const clusterFile = readTextFile(join(directory, clusterFileName), maxJsonDocumentBytes);
  const commandsFile = readTextFile(join(directory, commandsFileName), maxCommandsFileBytes);
  const expectedFile = readTextFile(join(directory, expectedLogFileName), maxExpectedLogBytes);
  for (const [file, outcome] of [
    [clusterFileName, clusterFile],
    [commandsFileName, commandsFile],
    [expectedLogFileName, expectedFile],
  ] as const) {
    if ("problem" in outcome) problems.push({ file, line: undefined, message: outcome.problem });
  }
  if ("missing" in clusterFile) problems.push({ file: clusterFileName, line: undefined, message: "is missing: every scenario directory needs one" });
  if (!("text" in clusterFile)) return { ok: false, problems };

  const cluster = parseCluster(clusterFile.text);
  if (!cluster.ok) return { ok: false, problems: [...problems, ...cluster.problems] };
  // a scenario without a commands file just runs the cluster undisturbed
  const commands = "text" in commandsFile ? parseCommands(commandsFile.text, cluster.value) : { ok: true as const, value: [] };
  if (!commands.ok) problems.push(...commands.problems);
  if (problems.length > 0 || !commands.ok) return { ok: false, problems };
  return {
    ok: true,
    value: { name, cluster: cluster.value, commands: commands.value, expectedLog: "text" in expectedFile ? expectedFile.text : undefined },
  };
}
