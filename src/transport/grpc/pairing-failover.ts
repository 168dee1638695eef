import type { PairingTransport } from "../../pairing/device-client.js";
import { GrpcPairingTransport } from "./pairing-client.js";
import { isRpcError, RpcStatus } from "./rpc-error.js";

/**
 * The PairingService of a cluster's gateways, for a device waiting for its decision: requests and
 * decisions are in the shared database, so any gateway answers a status poll. When the one in use
 * stops answering (UNAVAILABLE), the next poll goes to the next gateway. Every connection is pinned to
 * the same CA.
 */
export class FailoverPairingTransport implements PairingTransport {
  readonly #transports: GrpcPairingTransport[];
  #current = 0;

  constructor(addresses: readonly { host: string; port: number }[], caPin: Uint8Array) {
    if (addresses.length === 0) throw new RangeError("at least one gateway address");
    this.#transports = addresses.map(({ host, port }) => new GrpcPairingTransport(host, port, caPin));
  }

  #use<T>(call: (t: GrpcPairingTransport) => Promise<T>): Promise<T> {
    const transport = this.#transports[this.#current]!;
    return call(transport).catch((err: unknown) => {
      if (this.isTransient(err)) this.#current = (this.#current + 1) % this.#transports.length;
      throw err;
    });
  }

  begin(input: Parameters<PairingTransport["begin"]>[0]) {
    return this.#use((t) => t.begin(input));
  }

  exchange(input: Parameters<PairingTransport["exchange"]>[0]) {
    return this.#use((t) => t.exchange(input));
  }

  complete(input: Parameters<PairingTransport["complete"]>[0]) {
    return this.#use((t) => t.complete(input));
  }

  status(input: Parameters<PairingTransport["status"]>[0]) {
    return this.#use((t) => t.status(input));
  }

  isTransient(err: unknown): boolean {
    return isRpcError(err, RpcStatus.UNAVAILABLE);
  }

  close(): void {
    for (const t of this.#transports) t.close();
  }
}
