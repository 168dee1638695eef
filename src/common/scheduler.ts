import type { Clock } from "./clock.js";

/** Timers are injected like the clock, so deadlines and heartbeats test deterministically. */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemScheduler: Scheduler = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Runs timers when a ManualClock-driven test says time has passed (`advance`). */
export class ManualScheduler implements Scheduler {
  readonly #clock: Clock & { advance(ms: number): void };
  #next = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(clock: Clock & { advance(ms: number): void }) {
    this.#clock = clock;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#clock.now() + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  get pending(): number {
    return this.#timers.size;
  }

  /** Moves the clock forward, firing due timers in time order (each at its own time). */
  advance(ms: number): void {
    const end = this.#clock.now() + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers)
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      this.#timers.delete(due[0]);
      if (due[1].at > this.#clock.now()) this.#clock.advance(due[1].at - this.#clock.now());
      due[1].fn();
    }
    if (end > this.#clock.now()) this.#clock.advance(end - this.#clock.now());
  }
}
