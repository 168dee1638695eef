import type { BenchResult } from "./harness.js";

/** Latency percentiles and ratio rows for the node-port, dispatch and revoke benchmarks. */

/** Nearest-rank percentile of ascending samples. */
export function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export interface Latency {
  p50: number;
  p99: number;
  count: number;
  totalMs: number;
}

export function latencyOf(samples: readonly number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const totalMs = samples.reduce((sum, v) => sum + v, 0);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), count: sorted.length, totalMs };
}

/** The p50 and p99 rows of a latency, in ms; their time is the sum of the timed samples. */
export function latencyRows(suite: string, name: string, l: Latency): BenchResult[] {
  return (["p50", "p99"] as const).map((p) => ({
    suite,
    name: `${name} ${p}`,
    value: round(l[p]),
    unit: "ms",
    iterations: l.count,
    durationMs: l.totalMs,
  }));
}

export function ratioRow(suite: string, name: string, value: number): BenchResult {
  return { suite, name, value: round(value), unit: "x" };
}

export function round(v: number): number {
  return Math.round(v * 100) / 100;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
