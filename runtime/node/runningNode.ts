/** What every node process entry returns once started, and the exit codes of `haring node` (those of the CLI, runtime/cli/usageError.ts). */
export const nodeExitCodes = {
  /** Stopped on SIGTERM/SIGINT, cleanly. */
  ok: 0,
  /** Failed while running (a disk failure, an unrecoverable log): restart it to recover. */
  fatal: 1,
  /** A wrong command line or config file. */
  usage: 2,
  /** It could not start: the config file unreadable, NATS unreachable, the data directory in use, the hypervisor unavailable. */
  environment: 3,
} as const;

export const nodeLockFileName = "node.lock";

export interface RunningNode {
  /** Settles with the exit code once the node has stopped (on stop() or a fatal error). */
  readonly finished: Promise<number>;
  /** Stops cleanly; resolves with the exit code. Safe to call twice. */
  stop(): Promise<number>;
}

export interface RunNodeOptions {
  /** Where JSON log lines go (stderr by default). */
  readonly logLine?: (line: string) => void;
}
