import { type ConnectionPeer, normalizeAddress } from "./peer-identity.js";

/** The part of a socket the registry uses (a TLSSocket in production, a stub in unit tests). */
export interface RegistrableSocket {
  readonly destroyed: boolean;
  destroy(error?: Error): void;
  once(event: "close", listener: () => void): unknown;
}

/** The four addresses that identify one TCP connection (as grpc-js reports them for a call). */
export interface ConnectionEndpoints {
  localAddress?: string | undefined;
  localPort?: number | undefined;
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
  /** `quic` for UDP connections (a TCP and a UDP connection may share the four addresses). */
  transport?: "tcp" | "quic" | undefined;
}

interface Entry {
  socket: RegistrableSocket;
  peer: ConnectionPeer;
  key: string;
}

/** A live call that can be ended from outside (revocation). `end` must be idempotent. */
export type CallTerminator = (reason: string) => void;

/**
 * Live node-port connections, by device id and by TCP endpoints, and live calls by device id: what
 * revocation needs to end a device's sessions at once (DESIGN section 4, "Revocation"). Entries leave
 * the registry when their socket closes or their call ends.
 */
export class ConnectionRegistry {
  readonly #byEndpoints = new Map<string, Entry>();
  readonly #byDevice = new Map<string, Set<Entry>>();
  readonly #calls = new Map<string, Set<CallTerminator>>();

  /** Registers an accepted connection; false (and nothing recorded) if the socket is already gone. */
  add(socket: RegistrableSocket, peer: ConnectionPeer): boolean {
    if (socket.destroyed) return false;
    const entry: Entry = { socket, peer, key: endpointKey(peer) };
    // A TCP 4-tuple is unique among open connections; a stale entry would only be left by a socket
    // whose close we missed, so the new connection wins.
    this.#byEndpoints.set(entry.key, entry);
    const identity = peer.identity;
    if (identity.kind === "device") {
      let set = this.#byDevice.get(identity.deviceId);
      if (!set) {
        set = new Set();
        this.#byDevice.set(identity.deviceId, set);
      }
      set.add(entry);
    }
    socket.once("close", () => this.#remove(entry));
    return true;
  }

  /** The peer of the live connection with these endpoints (how a gRPC call finds its connection). */
  lookup(endpoints: ConnectionEndpoints): ConnectionPeer | undefined {
    const entry = this.#byEndpoints.get(endpointKey(endpoints));
    return entry && !entry.socket.destroyed ? entry.peer : undefined;
  }

  /** Number of live connections (all, or one device's). */
  connectionCount(deviceId?: string): number {
    if (deviceId === undefined) return this.#byEndpoints.size;
    return this.#byDevice.get(deviceId)?.size ?? 0;
  }

  /** Live connections of devices (anonymous ones left out). */
  deviceConnectionCount(): number {
    let n = 0;
    for (const set of this.#byDevice.values()) n += set.size;
    return n;
  }

  /** Device ids with at least one live connection. */
  connectedDevices(): string[] {
    return [...this.#byDevice.keys()];
  }

  /** Records a live call of a device; returns the function that forgets it (call it when the call ends). */
  trackCall(deviceId: string, end: CallTerminator): () => void {
    let set = this.#calls.get(deviceId);
    if (!set) {
      set = new Set();
      this.#calls.set(deviceId, set);
    }
    set.add(end);
    return () => {
      const current = this.#calls.get(deviceId);
      if (!current) return;
      current.delete(end);
      if (current.size === 0) this.#calls.delete(deviceId);
    };
  }

  liveCallCount(deviceId: string): number {
    return this.#calls.get(deviceId)?.size ?? 0;
  }

  /**
   * Ends everything of a device: its live calls first (they answer PERMISSION_DENIED), then its
   * sockets, which leave the registry at once and are destroyed in the same turn of the event loop, or
   * on the next one when calls were ended (so their status is flushed). Returns how many sockets.
   */
  closeDevice(deviceId: string, reason = "the device's access was revoked"): number {
    const calls = [...(this.#calls.get(deviceId) ?? [])];
    this.#calls.delete(deviceId);
    for (const end of calls) {
      try {
        end(reason);
      } catch {
        // one failing call must not keep the others (or the sockets) alive
      }
    }
    const entries = [...(this.#byDevice.get(deviceId) ?? [])];
    for (const entry of entries) this.#remove(entry);
    const destroy = () => {
      for (const entry of entries) entry.socket.destroy();
    };
    // HTTP/2 writes the ended calls' status frames on its next turn of the event loop; destroying the
    // sockets right away would drop them (the client would see "connection dropped" instead of the
    // reason). Without calls to end, nothing waits.
    if (calls.length > 0) setImmediate(destroy);
    else destroy();
    return entries.length;
  }

  /** The live device connections' peers (what a periodic re-check of the allowlist walks). */
  devicePeers(): ConnectionPeer[] {
    const out: ConnectionPeer[] = [];
    for (const set of this.#byDevice.values()) for (const entry of set) out.push(entry.peer);
    return out;
  }

  /** Destroys the one connection of this peer (its certificate left the allowlist); false if gone. */
  closeConnection(peer: ConnectionPeer): boolean {
    const entry = this.#byEndpoints.get(endpointKey(peer));
    if (!entry || entry.peer !== peer) return false;
    this.#remove(entry);
    entry.socket.destroy();
    return true;
  }

  /** Destroys every registered connection (forced shutdown). Returns how many. */
  closeAll(): number {
    const entries = [...this.#byEndpoints.values()];
    for (const entry of entries) {
      this.#remove(entry);
      entry.socket.destroy();
    }
    return entries.length;
  }

  #remove(entry: Entry): void {
    if (this.#byEndpoints.get(entry.key) === entry) this.#byEndpoints.delete(entry.key);
    const identity = entry.peer.identity;
    if (identity.kind !== "device") return;
    const set = this.#byDevice.get(identity.deviceId);
    if (!set) return;
    set.delete(entry);
    if (set.size === 0) this.#byDevice.delete(identity.deviceId);
  }
}

function endpointKey(e: ConnectionEndpoints): string {
  return `${e.transport ?? "tcp"}|${normalizeAddress(e.localAddress)}|${e.localPort ?? ""}|${normalizeAddress(e.remoteAddress)}|${e.remotePort ?? ""}`;
}
