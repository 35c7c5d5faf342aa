/**
 * Node processes on this machine, started the way an operator starts them:
 * `node bin/haring.js node --config FILE`, one config file and data
 * directory per node — for `haring up`, real-process tests and benchmarks.
 * A process is ready once its JSON log says `<role>.started`; its latest log
 * lines are kept (bounded, and copied to `logFile` when given), and its
 * status.json is read on demand.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { repositoryRoot } from "../repositoryRoot.ts";

export const haringBin = join(repositoryRoot, "bin/haring.js");
export const nodeProcessStartTimeoutMs = 30_000;
export const maxKeptLogLines = 5_000;
export const nodeStopWaitMs = 40_000;

export type LogLine = Record<string, unknown> & { readonly event?: string; readonly level?: string };

export interface NodeProcess {
  readonly id: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Parsed JSON log lines (stderr), the latest `maxKeptLogLines`. */
  readonly logs: LogLine[];
  /** Resolves once `<role>.started` is logged; rejects if the process exits or the timeout passes first. */
  readonly ready: Promise<void>;
  /** Exit code (null after a signal) once the process has ended. */
  readonly exited: Promise<number | null>;
  status<T>(): T | undefined;
  /** Sends a signal and waits (bounded) for the process to end. */
  kill(signal: NodeJS.Signals, waitMs?: number): Promise<number | null>;
  /** Lines of stderr that were not JSON (errors printed before the log started), bounded. */
  otherOutput(): string;
}

/** Writes `<baseDir>/<nodeId>.json` with `dataDir` = `<baseDir>/<nodeId>` and returns both paths. */
export function writeNodeConfig(baseDir: string, config: Record<string, unknown> & { readonly nodeId: string }): { readonly configPath: string; readonly dataDir: string } {
  const dataDir = join(baseDir, config.nodeId);
  mkdirSync(dataDir, { recursive: true });
  const configPath = join(baseDir, `${config.nodeId}.json`);
  writeFileSync(configPath, `${JSON.stringify({ ...config, dataDir }, null, 2)}\n`);
  return { configPath, dataDir };
}

export interface NodeProcessOptions {
  /** Every stderr line is also appended here. */
  readonly logFile?: string;
}

export function startNodeProcess(id: string, configPath: string, dataDir: string, options: NodeProcessOptions = {}): NodeProcess {
  const child = spawn(process.execPath, [haringBin, "node", "--config", configPath], { cwd: repositoryRoot, stdio: ["ignore", "ignore", "pipe"] });
  const logFile = options.logFile === undefined ? undefined : createWriteStream(options.logFile, { flags: "a" });
  logFile?.on("error", () => {});
  const logs: LogLine[] = [];
  let other = "";
  let markReady: () => void = () => {};
  let failReady: (error: Error) => void = () => {};
  const ready = new Promise<void>((resolveReady, rejectReady) => {
    markReady = resolveReady;
    failReady = rejectReady;
  });
  ready.catch(() => {});
  const timer = setTimeout(() => failReady(new Error(`${id} not ready within ${nodeProcessStartTimeoutMs} ms: ${other}`)), nodeProcessStartTimeoutMs);
  createInterface({ input: child.stderr! }).on("line", (line) => {
    logFile?.write(`${line}\n`);
    let parsed: LogLine | undefined;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      if (other.length < 8_192) other += `${line}\n`;
      return;
    }
    logs.push(parsed);
    if (logs.length > maxKeptLogLines) logs.shift();
    if (typeof parsed.event === "string" && parsed.event.endsWith(".started")) {
      clearTimeout(timer);
      markReady();
    }
  });
  const exited = new Promise<number | null>((resolveExit) => {
    child.once("exit", (code) => {
      clearTimeout(timer);
      failReady(new Error(`${id} exited with ${code} before it was ready: ${other}`));
      logFile?.end();
      resolveExit(code);
    });
  });
  return {
    id,
    dataDir,
    child,
    logs,
    ready,
    exited,
    status<T>() {
      try {
        return JSON.parse(readFileSync(join(dataDir, "status.json"), "utf8")) as T;
      } catch {
        return undefined;
      }
    },
    async kill(signal, waitMs = nodeStopWaitMs) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      let waitTimer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise<"timeout">((done) => (waitTimer = setTimeout(() => done("timeout"), waitMs)))]);
      clearTimeout(waitTimer);
      if (code === "timeout") {
        child.kill("SIGKILL");
        return exited;
      }
      return code;
    },
    otherOutput: () => other,
  };
}
