import type { Socket } from "node:net";

/**
 * Admission control for TLS handshakes: at most `maxInFlight` run at once, up to `maxQueued` more wait
 * (their TCP connection open and paused, the client waiting for the server's first flight), and the
 * rest are shed at once (closed: the client backs off and tries again). A restart brings thousands of
 * nodes back within a second; taking their handshakes a bounded batch at a time keeps the event loop
 * turning for connected nodes' heartbeats, pairing and the admin API. Waiting counts against each
 * socket's absolute handshake deadline, which is armed at accept.
 */

export type AdmissionState = "open" | "queueing" | "shedding";

export interface HandshakeAdmissionOptions {
  maxInFlight: number;
  maxQueued: number;
  /** Starts the handshake of an admitted socket. */
  admit: (socket: Socket) => void;
  /** A socket refused because the queue is full (already destroyed). */
  onShed?: (socket: Socket) => void;
}

export class HandshakeAdmission {
  readonly #options: HandshakeAdmissionOptions;
  readonly #inFlight = new Set<Socket>();
  /** Waiting sockets, oldest first (a Set keeps insertion order and drops a closed one in O(1)). */
  readonly #queue = new Set<Socket>();

  constructor(options: HandshakeAdmissionOptions) {
    if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1)
      throw new RangeError("maxInFlight must be a positive integer");
    if (!Number.isInteger(options.maxQueued) || options.maxQueued < 0)
      throw new RangeError("maxQueued must be a non-negative integer");
    this.#options = options;
  }

  state(): AdmissionState {
    if (this.queued >= this.#options.maxQueued && this.#inFlight.size >= this.#options.maxInFlight)
      return "shedding";
    return this.queued > 0 ? "queueing" : "open";
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  get queued(): number {
    return this.#queue.size;
  }

  /** A new TCP connection: handshake now, wait in line, or shed. */
  offer(socket: Socket): void {
    socket.once("close", () => {
      this.#queue.delete(socket);
      this.release(socket);
    });
    if (this.#inFlight.size < this.#options.maxInFlight) this.#start(socket);
    else if (this.#queue.size < this.#options.maxQueued) this.#queue.add(socket);
    else {
      socket.destroy();
      this.#options.onShed?.(socket);
    }
  }

  /** The socket's handshake ended (done, failed, or the socket closed): the next in line starts. */
  release(socket: Socket): void {
    if (!this.#inFlight.delete(socket)) return;
    while (this.#inFlight.size < this.#options.maxInFlight && this.#queue.size > 0) {
      const next = this.#queue.values().next().value as Socket;
      this.#queue.delete(next);
      // One destroyed while waiting (its deadline) whose 'close' has not run yet is skipped.
      if (!next.destroyed) this.#start(next);
    }
  }

  #start(socket: Socket): void {
    this.#inFlight.add(socket);
    this.#options.admit(socket);
  }
}
