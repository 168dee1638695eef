import { createHmac, timingSafeEqual } from "node:crypto";
import { QuicTransportError } from "./errors.js";

/**
 * `@matrixai/quic` is loaded on first use, not at import: its native addon exists for linux-x64 only,
 * and everything else (the daemon's gRPC node port, the CLI) must keep working where it is missing.
 */
export type QuicLibrary = typeof import("@matrixai/quic");
type LoggerModule = typeof import("@matrixai/logger");

let loaded: Promise<{ quic: QuicLibrary; logger: InstanceType<LoggerModule["default"]> }> | undefined;

export function loadQuicLibrary() {
  loaded ??= (async () => {
    try {
      const quic = await import("@matrixai/quic");
      const { default: Logger, LogLevel } = await import("@matrixai/logger");
      // The library logs at INFO by default, including every connection error; ours logs what matters.
      return { quic, logger: new Logger("quic", LogLevel.SILENT) };
    } catch (err) {
      loaded = undefined;
      throw new QuicTransportError(
        "unsupported_platform",
        `QUIC is not available on ${process.platform}-${process.arch}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  })();
  return loaded;
}

/** Retry tokens and connection ids are HMACs under a per-process key; verification is constant time. */
export const serverCryptoOps = {
  async sign(key: ArrayBuffer, data: ArrayBuffer): Promise<ArrayBuffer> {
    const mac = createHmac("sha256", Buffer.from(key)).update(Buffer.from(data)).digest();
    return mac.buffer.slice(mac.byteOffset, mac.byteOffset + mac.byteLength);
  },
  async verify(key: ArrayBuffer, data: ArrayBuffer, sig: ArrayBuffer): Promise<boolean> {
    const mac = createHmac("sha256", Buffer.from(key)).update(Buffer.from(data)).digest();
    const given = Buffer.from(sig);
    return given.length === mac.length && timingSafeEqual(given, mac);
  },
};

/** TLS alerts as QUIC crypto errors (0x100 + alert), what a refused handshake answers with. */
export const TlsAlert = {
  badCertificate: 298,
  unsupportedCertificate: 299,
  certificateRevoked: 300,
  certificateExpired: 301,
  unknownCa: 304,
  accessDenied: 305,
  certificateRequired: 372,
} as const;

/** Application close codes on our QUIC connections. */
export const QuicCloseCode = {
  /** Normal shutdown (the peer should reconnect later). */
  shutdown: 0,
  /** The device's certificate or the device itself is no longer allowed. */
  revoked: 403,
  /** Over the connection limit. */
  busy: 503,
} as const;

export const ALPN = "palyra-quic-v1";
export const PROTOCOL_VERSION = 1;
