/**
 * Logs and metrics as ports. Log lines are structured (an event name plus
 * flat fields) so the simulator can print them byte-for-byte reproducibly and
 * the runtime can emit JSON.
 */
export type LogFieldValue = string | number | boolean | null;
export type LogFields = Readonly<Record<string, LogFieldValue>>;

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Log {
  write(level: LogLevel, event: string, fields?: LogFields): void;
}

export type MetricLabels = Readonly<Record<string, string>>;

export interface Metrics {
  increment(name: string, labels?: MetricLabels, by?: number): void;
  setGauge(name: string, value: number, labels?: MetricLabels): void;
  observe(name: string, value: number, labels?: MetricLabels): void;
}
