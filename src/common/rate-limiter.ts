import { isIPv6 } from "node:net";
import type { Clock } from "./clock.js";

/**
 * Sliding-window limiter per key: at most `limit` events in any `windowMs`-long span, exactly (it keeps
 * the last `limit` event times per key). A fixed window lets twice the limit through around a window
 * boundary; this does not. The clock is injected so limits test deterministically. Memory is bounded:
 * a key is dropped once its newest event leaves the window, and at most `maxKeys` are tracked (beyond
 * that, new keys are refused: under a flood the conservative answer is "no").
 */
export class SlidingWindowLimiter {
  readonly #clock: Clock;
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  /** Per key: a ring of the last `limit` event times, and where the oldest one is. */
  readonly #keys = new Map<string, { times: number[]; next: number }>();

  constructor(clock: Clock, options: { limit: number; windowMs: number; maxKeys?: number }) {
    if (!(Number.isInteger(options.limit) && options.limit >= 1 && options.windowMs >= 1))
      throw new RangeError("limit and window must be positive");
    this.#clock = clock;
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? 100_000;
  }

  /** Counts one event for `key`; returns false (and counts nothing) when the key is over its limit. */
  take(key = ""): boolean {
    const now = this.#clock.now();
    let entry = this.#keys.get(key);
    if (!entry) {
      if (this.#keys.size >= this.#maxKeys) this.#sweep(now);
      if (this.#keys.size >= this.#maxKeys) return false;
      entry = { times: [], next: 0 };
      this.#keys.set(key, entry);
    }
    if (entry.times.length < this.#limit) {
      entry.times.push(now);
      return true;
    }
    // Full ring: the slot at `next` holds the oldest of the last `limit` events.
    if (now - entry.times[entry.next]! < this.#windowMs) return false;
    entry.times[entry.next] = now;
    entry.next = (entry.next + 1) % this.#limit;
    return true;
  }

  #sweep(now: number): void {
    for (const [key, entry] of this.#keys) {
      const newest = entry.times[(entry.next + entry.times.length - 1) % entry.times.length]!;
      if (now - newest >= this.#windowMs) this.#keys.delete(key);
    }
  }
}

/**
 * The key a per-address limit counts under: the address itself for IPv4, its /64 prefix for IPv6 (one
 * host usually holds a whole /64, so counting single IPv6 addresses would be no limit at all).
 */
export function addressBucket(address: string): string {
  if (!isIPv6(address)) return address;
  const [head = "", tail = ""] = address.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const groups = address.includes("::")
    ? [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || "0", 16).toString(16))
    .join(":")}::/64`;
}
