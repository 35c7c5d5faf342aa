import type { Log, LogFields, LogLevel } from "../actors/ports/telemetry.ts";

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One JSON object per line: `{"ts":"…","level":"info","node":"h1","event":"…",...fields}`. */
export class JsonLog implements Log {
  constructor(
    private readonly nodeId: string,
    private readonly write_: (line: string) => void = (line) => process.stderr.write(line),
    private readonly minimumLevel: LogLevel = "info",
  ) {}

  write(level: LogLevel, event: string, fields?: LogFields): void {
    if (levelRank[level] < levelRank[this.minimumLevel]) return;
    this.write_(`${JSON.stringify({ ts: new Date().toISOString(), level, node: this.nodeId, event, ...fields })}\n`);
  }
}
