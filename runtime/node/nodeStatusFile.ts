/**
 * `<dataDir>/status.json` (what the node is doing, for tools and tests) and
 * `<dataDir>/metrics.prom` (its metrics in Prometheus text format, for a
 * node-exporter textfile collector), rewritten every `intervalMs` off the
 * event loop, one write at a time, each by write-then-rename so a reader never
 * sees half a file.
 */
import { renameSync, writeFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Log } from "../../actors/ports/telemetry.ts";
import type { MetricsRegistry } from "../metricsRegistry.ts";

export const statusFileName = "status.json";
export const metricsFileName = "metrics.prom";

export interface NodeStatusFile {
  /** Writes both files once more, synchronously (on stop). */
  flush(): void;
  stop(): Promise<void>;
}

async function replace(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, text);
  await rename(temp, path);
}

export function startNodeStatusFile(dataDir: string, intervalMs: number, status: () => object, metrics: MetricsRegistry, log: Log): NodeStatusFile {
  const statusPath = join(dataDir, statusFileName);
  const metricsPath = join(dataDir, metricsFileName);
  let writing: Promise<void> | undefined;
  const write = (): void => {
    if (writing) return;
    writing = Promise.all([replace(statusPath, `${JSON.stringify(status())}\n`), replace(metricsPath, metrics.render())])
      .then(() => undefined)
      .catch((error: unknown) => log.write("warn", "status.write-failed", { error: error instanceof Error ? error.message : String(error) }))
      .finally(() => (writing = undefined));
  };
  const timer = intervalMs > 0 ? setInterval(write, intervalMs) : undefined;
  if (intervalMs > 0) write();
  return {
    flush() {
      if (intervalMs === 0) return;
      try {
        for (const [path, text] of [
          [statusPath, `${JSON.stringify(status())}\n`],
          [metricsPath, metrics.render()],
        ] as const) {
          writeFileSync(`${path}.final`, text);
          renameSync(`${path}.final`, path);
        }
      } catch {
        // the files are for tools; a failing disk is reported elsewhere
      }
    },
    async stop() {
      if (timer) clearInterval(timer);
      await writing;
    },
  };
}
