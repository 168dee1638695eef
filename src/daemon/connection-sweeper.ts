import { limits } from "../common/limits.js";
import type { Scheduler } from "../common/scheduler.js";
import type { NodePortServer } from "../transport/grpc/server.js";

export interface CutConnection {
  deviceId: string;
  fingerprint: string;
}

/**
 * Re-checks the node port's live device connections against the allowlist every
 * `connectionSweepIntervalMs`, so a connection whose certificate left it (rotation overlap over,
 * expired) ends even when it makes no new call. Revocation does not wait for this: it cuts at once.
 */
export class ConnectionSweeper {
  readonly #server: Pick<NodePortServer, "sweep">;
  readonly #scheduler: Scheduler;
  readonly #onCut: (cut: CutConnection) => void;
  #timer: unknown;
  #running = false;

  constructor(
    server: Pick<NodePortServer, "sweep">,
    scheduler: Scheduler,
    onCut: (cut: CutConnection) => void = () => {},
  ) {
    this.#server = server;
    this.#scheduler = scheduler;
    this.#onCut = onCut;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  stop(): void {
    this.#running = false;
    this.#scheduler.clearTimeout(this.#timer);
  }

  /** One pass now; resolves with what it cut. */
  async sweep(): Promise<CutConnection[]> {
    const cut: CutConnection[] = [];
    for (const peer of await this.#server.sweep())
      if (peer.identity.kind === "device") {
        const entry = { deviceId: peer.identity.deviceId, fingerprint: peer.identity.fingerprint };
        cut.push(entry);
        this.#onCut(entry);
      }
    return cut;
  }

  #schedule(): void {
    this.#timer = this.#scheduler.setTimeout(() => {
      this.sweep()
        .catch(() => [])
        .finally(() => {
          if (this.#running) this.#schedule();
        });
    }, limits.connectionSweepIntervalMs);
  }
}
