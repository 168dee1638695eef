import { createHash } from "node:crypto";

/** Byte strings both sides must build identically (DESIGN section 5). */

export const PROTOCOL = "palyra-pairing-v1";

/**
 * SPAKE2+ context: protocol || session id || challenge || SHA-256(CA DER) || client kind || code id.
 * The last two vary in length (the code id is empty when a bare PIN is typed), so each carries a
 * one-byte length prefix: without it, kind "node1" + "" and "node" + "1..." could collide.
 */
export function pairingContext(f: {
  sessionId: string;
  challenge: Uint8Array;
  caCertDer: Uint8Array;
  clientKind: string;
  codeId: string;
}): Buffer {
  return Buffer.concat([
    Buffer.from(PROTOCOL),
    Buffer.from(f.sessionId),
    f.challenge,
    createHash("sha256").update(f.caCertDer).digest(),
    withLength(f.clientKind),
    withLength(f.codeId),
  ]);
}

function withLength(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length > 255) throw new RangeError("context field too long");
  return Buffer.concat([Buffer.of(bytes.length), bytes]);
}

export function verifierIdentity(caSpkiFingerprintHex: string): Buffer {
  return Buffer.from(`palyra-gateway:${caSpkiFingerprintHex}`);
}

/** What the device signs in CompletePairing: binds its identity key and CSR to this exchange's K_main. */
export function completionMessage(kMain: Uint8Array, identityPublic: Uint8Array, csrDer: Uint8Array): Buffer {
  return createHash("sha256")
    .update("palyra-pairing-signature-v1")
    .update(kMain)
    .update(identityPublic)
    .update(createHash("sha256").update(csrDer).digest())
    .digest();
}

/** What the device signs in each GetPairingStatus poll. */
export function statusMessage(requestId: string, timestampMs: number): Buffer {
  const ts = Buffer.alloc(8);
  ts.writeBigInt64BE(BigInt(timestampMs));
  return Buffer.concat([Buffer.from("palyra-pairing-status-v1"), Buffer.from(requestId), ts]);
}
