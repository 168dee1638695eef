import { createCipheriv, createDecipheriv } from "node:crypto";
import type { Random } from "../common/random.js";
import { CryptoError } from "./errors.js";

/**
 * Authenticated envelope: magic (4 bytes) || version (1) || nonce (12) || ChaCha20-Poly1305 ciphertext
 * || tag (16). The header and the caller's associated data are both authenticated, so a changed byte
 * anywhere, or an envelope moved to another name (different AAD), fails to open.
 */

export { CryptoError };

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const HEADER_BYTES = 4 + 1 + NONCE_BYTES;
export const ENVELOPE_OVERHEAD = HEADER_BYTES + TAG_BYTES;

export interface EnvelopeFormat {
  /** 4 ASCII bytes naming the kind of envelope, e.g. "PSS1". */
  magic: string;
  version: number;
}

function header(format: EnvelopeFormat, nonce: Uint8Array): Buffer {
  const magic = Buffer.from(format.magic, "ascii");
  if (magic.length !== 4) throw new RangeError("envelope magic must be 4 ASCII bytes");
  if (!Number.isInteger(format.version) || format.version < 0 || format.version > 255)
    throw new RangeError("version");
  return Buffer.concat([magic, Buffer.of(format.version), nonce]);
}

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new CryptoError("invalid_key", "an envelope key is 32 bytes");
}

export function sealEnvelope(
  format: EnvelopeFormat,
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  random: Random,
): Buffer {
  checkKey(key);
  const head = header(format, random.bytes(NONCE_BYTES));
  const cipher = createCipheriv("chacha20-poly1305", key, head.subarray(5), { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.concat([head, aad]), { plaintextLength: plaintext.length });
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([head, body, cipher.getAuthTag()]);
}

export function openEnvelope(
  format: EnvelopeFormat,
  key: Uint8Array,
  envelope: Uint8Array,
  aad: Uint8Array,
): Buffer {
  checkKey(key);
  const data = Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength);
  if (data.length < ENVELOPE_OVERHEAD) throw new CryptoError("envelope_malformed", "envelope is truncated");
  if (data.subarray(0, 4).toString("latin1") !== format.magic)
    throw new CryptoError(
      "envelope_malformed",
      "envelope has the wrong magic (not a Palyra envelope of this kind)",
    );
  if (data[4] !== format.version)
    throw new CryptoError(
      "envelope_malformed",
      `envelope version ${data[4]} is not supported (expected ${format.version})`,
    );
  const head = data.subarray(0, HEADER_BYTES);
  const decipher = createDecipheriv("chacha20-poly1305", key, head.subarray(5), { authTagLength: TAG_BYTES });
  const body = data.subarray(HEADER_BYTES, data.length - TAG_BYTES);
  decipher.setAAD(Buffer.concat([head, aad]), { plaintextLength: body.length });
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (err) {
    throw new CryptoError(
      "envelope_auth_failed",
      "envelope failed authentication (tampered, moved to another name, or wrong key)",
      { cause: err },
    );
  }
}
