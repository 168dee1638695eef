import pg from "pg";
import type { SignalTopic, StoreSignals } from "../ports.js";
import { clientConfig, type Sql } from "./database.js";

/** The one channel every gateway listens on; payloads are `<topic>:<id>`. */
export const SIGNAL_CHANNEL = "palyra_signals";

/**
 * Publishes inside the caller's transaction: PostgreSQL delivers a NOTIFY only when that transaction
 * commits (and never when it rolls back), to every listening session, this gateway's own included.
 */
export async function publish(tx: Sql, topic: SignalTopic, id: string): Promise<void> {
  await tx.rows("SELECT pg_notify($1, $2)", [SIGNAL_CHANNEL, `${topic}:${id}`]);
}

const TOPICS: ReadonlySet<string> = new Set<SignalTopic>(["pairing_request", "device", "node_request"]);
const MAX_BACKOFF_MS = 5_000;

/**
 * StoreSignals over LISTEN/NOTIFY on a dedicated connection (a pooled one would be handed back and
 * stop listening). If that connection drops, it reconnects with exponential backoff; notifications
 * sent meanwhile are lost, which is why listeners re-read rows and the gateway also re-checks
 * periodically.
 */
export class PgSignals implements StoreSignals {
  readonly #url: string;
  readonly #listeners = new Map<SignalTopic, Set<(id: string) => void>>();
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #backoff = 100;
  #closed = false;

  constructor(url: string) {
    this.#url = url;
  }

  /** Connects and LISTENs; the store opens only once this has worked, so no signal is missed at start. */
  async start(): Promise<void> {
    await this.#connect();
  }

  subscribe(topic: SignalTopic, listener: (id: string) => void): () => void {
    const set = this.#listeners.get(topic) ?? new Set();
    this.#listeners.set(topic, set);
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(clientConfig(this.#url));
    client.on("notification", (message) => this.#deliver(message.payload));
    client.on("error", () => this.#lost(client));
    client.on("end", () => this.#lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${SIGNAL_CHANNEL}`);
    } catch (err) {
      client.removeAllListeners("end");
      await client.end().catch(() => {});
      throw err;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#backoff = 100;
  }

  #deliver(payload: string | undefined): void {
    if (!payload) return;
    const colon = payload.indexOf(":");
    const topic = payload.slice(0, colon);
    if (colon < 0 || !TOPICS.has(topic)) return;
    const id = payload.slice(colon + 1);
    for (const listener of this.#listeners.get(topic as SignalTopic) ?? []) {
      try {
        listener(id);
      } catch {
        // one listener's failure must not starve the others or kill the connection
      }
    }
  }

  #lost(client: pg.Client): void {
    if (this.#closed || client !== this.#client) return;
    this.#client = undefined;
    client.end().catch(() => {});
    this.#retry();
  }

  #retry(): void {
    if (this.#closed || this.#timer) return;
    // Jittered so that gateways which lost the database together do not all come back in one burst.
    const delay = this.#backoff * (0.5 + Math.random() / 2);
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#connect().catch(() => this.#retry());
    }, delay);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    this.#client = undefined;
    this.#listeners.clear();
    await client?.end().catch(() => {});
  }
}
