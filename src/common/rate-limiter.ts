import type { Clock } from "./clock.js";

/**
 * Fixed-window counter per key, with an injected clock so limits test deterministically. Memory is
 * bounded: keys are dropped when their window ends, and at most `maxKeys` are tracked (beyond that,
 * new keys are refused: under a flood the conservative answer is "no").
 */
export class FixedWindowLimiter {
  readonly #clock: Clock;
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(clock: Clock, options: { limit: number; windowMs: number; maxKeys?: number }) {
    if (!(options.limit >= 1 && options.windowMs >= 1))
      throw new RangeError("limit and window must be positive");
    this.#clock = clock;
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? 100_000;
  }

  /** Counts one event for `key`; returns false (and counts nothing) when the key is over its limit. */
  take(key = ""): boolean {
    const now = this.#clock.now();
    let window = this.#windows.get(key);
    if (window && now - window.start >= this.#windowMs) {
      this.#windows.delete(key);
      window = undefined;
    }
    if (!window) {
      if (this.#windows.size >= this.#maxKeys) this.#sweep(now);
      if (this.#windows.size >= this.#maxKeys) return false;
      window = { start: now, count: 0 };
      this.#windows.set(key, window);
    }
    if (window.count >= this.#limit) return false;
    window.count++;
    return true;
  }

  #sweep(now: number): void {
    for (const [key, window] of this.#windows)
      if (now - window.start >= this.#windowMs) this.#windows.delete(key);
  }
}
