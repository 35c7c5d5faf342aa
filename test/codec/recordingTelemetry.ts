import type { Log, LogFields, LogLevel, MetricLabels, Metrics } from "../../actors/ports/telemetry.ts";

export interface LoggedLine {
  readonly level: LogLevel;
  readonly event: string;
  readonly fields: LogFields;
}

interface CounterSeries {
  readonly name: string;
  readonly labels: MetricLabels;
  value: number;
}

/** Log and Metrics ports that remember everything, for assertions. */
export function recordingTelemetry() {
  const lines: LoggedLine[] = [];
  const series = new Map<string, CounterSeries>();
  const log: Log = { write: (level, event, fields = {}) => lines.push({ level, event, fields }) };
  const metrics: Metrics = {
    increment(name, labels = {}, by = 1) {
      const key = JSON.stringify([name, Object.entries(labels).sort()]);
      const existing = series.get(key) ?? { name, labels, value: 0 };
      existing.value += by;
      series.set(key, existing);
    },
    setGauge: () => {},
    observe: () => {},
  };
  /** Sum over every series of `name` whose labels include all of `labels`. */
  const counter = (name: string, labels: MetricLabels = {}): number => {
    let sum = 0;
    for (const entry of series.values()) {
      if (entry.name === name && Object.entries(labels).every(([label, wanted]) => entry.labels[label] === wanted)) sum += entry.value;
    }
    return sum;
  };
  return { log, metrics, lines, counter };
}
