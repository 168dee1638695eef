import { performance } from "node:perf_hooks";

/** One figure a benchmark reports. `run.ts` prints these as a table, or as JSON with `--json`. */
export interface BenchResult {
  /** The benchmark file it came from, e.g. "certificates". */
  suite: string;
  name: string;
  value: number;
  /** "ops/s", "x" (a ratio), "ms", ... */
  unit: string;
  /** Timed iterations behind the figure (absent for derived figures such as ratios). */
  iterations?: number;
  /** Timed wall-clock duration behind the figure. */
  durationMs?: number;
}

export interface MeasureOptions {
  /** Untimed calls before timing starts, for this long (JIT, caches). Default 300 ms. */
  warmupMs?: number;
  /** Time calls for at least this long. Default 2 000 ms. */
  durationMs?: number;
  /** ... but stop after this many timed calls. Default unlimited. */
  maxIterations?: number;
  /** ... and make at least this many timed calls whatever the time. Default 1. */
  minIterations?: number;
}

export interface Measurement {
  iterations: number;
  elapsedMs: number;
  opsPerSec: number;
}

/**
 * Calls `fn` one call at a time (awaiting it when it returns a promise, not otherwise, so synchronous
 * work is not slowed by a microtask per call), first to warm up, then timed. Returns calls per second.
 */
export async function measure(fn: () => unknown, options: MeasureOptions = {}): Promise<Measurement> {
  const warmupMs = options.warmupMs ?? 300;
  const durationMs = options.durationMs ?? 2_000;
  const maxIterations = options.maxIterations ?? Number.POSITIVE_INFINITY;
  const minIterations = options.minIterations ?? 1;

  const warmupEnd = performance.now() + warmupMs;
  while (performance.now() < warmupEnd) await callOnce(fn);

  let iterations = 0;
  const start = performance.now();
  let elapsedMs = 0;
  while (iterations < maxIterations && (elapsedMs < durationMs || iterations < minIterations)) {
    await callOnce(fn);
    iterations++;
    elapsedMs = performance.now() - start;
  }
  return { iterations, elapsedMs, opsPerSec: (iterations * 1000) / elapsedMs };
}

function callOnce(fn: () => unknown): Promise<unknown> | undefined {
  const result = fn();
  return isThenable(result) ? result : undefined;
}

function isThenable(value: unknown): value is Promise<unknown> {
  return (
    value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function"
  );
}

/** A BenchResult in ops/s from a measurement. */
export function opsResult(suite: string, name: string, m: Measurement): BenchResult {
  return {
    suite,
    name,
    value: m.opsPerSec,
    unit: "ops/s",
    iterations: m.iterations,
    durationMs: m.elapsedMs,
  };
}
