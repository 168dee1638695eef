import { limits } from "./limits.js";

/**
 * When a node host tries its session again. After the gateway said goodbye (it is restarting), each
 * retry waits a random time between `goodbyeRetryMs` and the spread the gateway announced, for at least
 * `goodbyeFastRetryWindowMs` (or twice the spread): a lone node is back within moments, and ten thousand
 * arrive spread over the time the gateway needs to take their handshakes instead of all within the
 * same quarter second (which overflows the listen backlog, and then the kernel's SYN retransmits make
 * everyone wait seconds more). Otherwise: exponential backoff from 1 s to 30 s, jittered down to half.
 */

export const BACKOFF_MIN_MS = 1_000;
export const BACKOFF_MAX_MS = 30_000;

export interface ReconnectState {
  /** Failed attempts in a row (1 after the first failure). */
  failures: number;
  /** When the gateway last said goodbye, if it did. */
  goodbyeAt: number | undefined;
  /** The spread from that goodbye (0: none given). */
  spreadMs: number;
}

/** `random01` is uniform in [0, 1). */
export function reconnectDelayMs(state: ReconnectState, now: number, random01: number): number {
  const spread = Math.max(
    limits.goodbyeRetryMs,
    Math.min(limits.reconnectSpreadMaxMs, state.spreadMs || limits.goodbyeDefaultSpreadMs),
  );
  const window = Math.max(limits.goodbyeFastRetryWindowMs, 2 * spread);
  if (state.goodbyeAt !== undefined && now - state.goodbyeAt < window)
    return limits.goodbyeRetryMs + random01 * (spread - limits.goodbyeRetryMs);
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(Math.max(state.failures, 1) - 1, 5));
  return base * (0.5 + random01 * 0.5);
}

/** The spread a gateway announces when it says goodbye to this many nodes at once. */
export function reconnectSpreadFor(nodes: number): number {
  return Math.min(limits.reconnectSpreadMaxMs, Math.ceil((nodes / limits.reconnectRatePerSecond) * 1000));
}
