import { limits } from "../../common/limits.js";
import { PairingService } from "../../gen/palyra/v1/pairing_pb.js";
import type { PairingTransport } from "../../pairing/device-client.js";
import { PairingError } from "../../pairing/errors.js";
import { NodePortClient } from "./client.js";
import { STATE_FROM_WIRE, WIRE_VERSION } from "./pairing-mapping.js";
import { isRpcError, RpcStatus } from "./rpc-error.js";

/** The device's PairingService client over the node port's TLS (no client certificate yet). */
export class GrpcPairingTransport implements PairingTransport {
  readonly #connection: NodePortClient;
  readonly #rpc;

  /** With `caPin` (a QR code's SHA-256 of the CA SPKI), a gateway under another CA is refused during TLS. */
  constructor(host: string, port: number, caPin?: Uint8Array) {
    this.#connection = new NodePortClient({ host, port, ...(caPin ? { pinnedCaSpki: caPin } : {}) });
    this.#rpc = this.#connection.service(PairingService);
  }

  async begin(input: { clientKind: string; codeId: string; deviceId: string }) {
    const res = await this.#rpc.beginPairing({ ...input, version: WIRE_VERSION });
    return {
      sessionId: res.sessionId,
      expiresAt: Number(res.expiresAtUnixMs),
      salt: Buffer.from(res.salt),
      iterations: res.iterations,
      challenge: Buffer.from(res.challenge),
      caCertDer: Buffer.from(res.caCertDer),
    };
  }

  async exchange(input: { sessionId: string; shareP: Uint8Array }) {
    return this.#rpc.exchangePairing(input);
  }

  async complete(input: Parameters<PairingTransport["complete"]>[0]) {
    return this.#rpc.completePairing(input);
  }

  async status(input: Parameters<PairingTransport["status"]>[0]) {
    const res = await this.#rpc.getPairingStatus(
      { ...input, timestampMs: BigInt(input.timestampMs) },
      { timeoutMs: limits.statusLongPollMs + 10_000 },
    );
    const state = STATE_FROM_WIRE.get(res.state);
    if (!state) throw new PairingError("invalid_input", "the gateway sent an unknown pairing state");
    return {
      state,
      reason: res.reason,
      clientCertPem: res.clientCertPem,
      caCertPem: res.caCertPem,
      certExpiresAt: Number(res.certExpiresAtUnixMs),
    };
  }

  isTransient(err: unknown): boolean {
    return isRpcError(err, RpcStatus.UNAVAILABLE);
  }

  serverCertificate(): Buffer | undefined {
    return this.#connection.capturedServerCertificate()?.der;
  }

  close(): void {
    this.#connection.close();
  }
}
