/**
 * What changed, by topic, for the console's live updates. Bursts are coalesced (one notice per 50 ms
 * at most), and a notice names topics only: the console refetches what it shows, so a missed or
 * repeated notice never leaves it wrong.
 */

export const TOPICS = ["pairing", "devices", "nodes", "secrets", "audit"] as const;
export type Topic = (typeof TOPICS)[number];
export type ChangeListener = (topics: Topic[]) => void;

const COALESCE_MS = 50;

export class ChangeFeed {
  readonly #listeners = new Set<ChangeListener>();
  readonly #pending = new Set<Topic>();
  #timer: NodeJS.Timeout | undefined;

  publish(...topics: Topic[]): void {
    for (const topic of topics) this.#pending.add(topic);
    if (this.#timer || this.#listeners.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const batch = [...this.#pending];
      this.#pending.clear();
      for (const listener of this.#listeners) {
        try {
          listener(batch);
        } catch {
          // one broken listener (a stream that died mid-write) must not stop the others, or the daemon
        }
      }
    }, COALESCE_MS);
    this.#timer.unref();
  }

  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#listeners.clear();
  }
}

/** Which views an audited change touches, from its kind (`pairing.approved`, `device.revoked`, ...). */
export function topicsOfAuditKind(kind: string): Topic[] {
  const domain = kind.split(".")[0];
  const topics: Topic[] = ["audit"];
  if (domain === "pairing") topics.push("pairing", "devices");
  else if (domain === "device") topics.push("devices", "nodes");
  else if (domain === "node") topics.push("nodes");
  else if (domain === "secret" || domain === "vault") topics.push("secrets");
  return topics;
}
