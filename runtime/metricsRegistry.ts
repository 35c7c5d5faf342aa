import type { MetricLabels, Metrics } from "../actors/ports/telemetry.ts";

/**
 * In-process metrics with Prometheus text exposition. Label sets per metric are
 * bounded so a bug that puts ids into labels cannot exhaust memory.
 */
export const maxSeriesPerMetric = 1_000;
export const maxMetrics = 500;

type Kind = "counter" | "gauge" | "summary";

interface Series {
  readonly labels: MetricLabels;
  value: number;
  count: number;
}

interface Metric {
  readonly kind: Kind;
  readonly series: Map<string, Series>;
  droppedSeries: number;
}

function labelKey(labels: MetricLabels | undefined): string {
  if (!labels) return "";
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${JSON.stringify(labels[key])}`)
    .join(",");
}

export class MetricsRegistry implements Metrics {
  private readonly metrics = new Map<string, Metric>();

  increment(name: string, labels?: MetricLabels, by = 1): void {
    const series = this.series(name, "counter", labels);
    if (series) series.value += by;
  }

  setGauge(name: string, value: number, labels?: MetricLabels): void {
    const series = this.series(name, "gauge", labels);
    if (series) series.value = value;
  }

  /** Kept as sum and count (a Prometheus summary without quantiles). */
  observe(name: string, value: number, labels?: MetricLabels): void {
    const series = this.series(name, "summary", labels);
    if (series) {
      series.value += value;
      series.count++;
    }
  }

  /** Counter or gauge value (a summary's sum), 0 when never touched. */
  value(name: string, labels?: MetricLabels): number {
    return this.metrics.get(name)?.series.get(labelKey(labels))?.value ?? 0;
  }

  /** The sum over every label set of a metric. */
  total(name: string): number {
    let sum = 0;
    for (const series of this.metrics.get(name)?.series.values() ?? []) sum += series.value;
    return sum;
  }

  /** Prometheus text format 0.0.4. */
  render(): string {
    const lines: string[] = [];
    for (const [name, metric] of this.metrics) {
      lines.push(`# TYPE ${name} ${metric.kind}`);
      for (const [key, series] of metric.series) {
        const labelText = key === "" ? "" : `{${key}}`;
        if (metric.kind === "summary") {
          lines.push(`${name}_sum${labelText} ${series.value}`, `${name}_count${labelText} ${series.count}`);
        } else {
          lines.push(`${name}${labelText} ${series.value}`);
        }
      }
    }
    return `${lines.join("\n")}\n`;
  }

  private series(name: string, kind: Kind, labels: MetricLabels | undefined): Series | undefined {
    let metric = this.metrics.get(name);
    if (!metric) {
      if (this.metrics.size >= maxMetrics) return undefined;
      metric = { kind, series: new Map(), droppedSeries: 0 };
      this.metrics.set(name, metric);
    }
    const key = labelKey(labels);
    let series = metric.series.get(key);
    if (!series) {
      if (metric.series.size >= maxSeriesPerMetric) {
        metric.droppedSeries++;
        return undefined;
      }
      series = { labels: { ...labels }, value: 0, count: 0 };
      metric.series.set(key, series);
    }
    return series;
  }
}
