import { EventEmitter } from "node:events";
import type { SignalTopic, StoreSignals } from "./ports.js";

/** Signals within one process (the SQLite store: one gateway holds the database). */
export class LocalSignals implements StoreSignals {
  readonly #events = new EventEmitter();

  constructor() {
    this.#events.setMaxListeners(0);
  }

  /** Called after the change committed; listeners run on a later tick so they never run inside a write. */
  publish(topic: SignalTopic, id: string): void {
    setImmediate(() => this.#events.emit(topic, id));
  }

  subscribe(topic: SignalTopic, listener: (id: string) => void): () => void {
    this.#events.on(topic, listener);
    return () => this.#events.off(topic, listener);
  }
}
