import { pbkdf2Sync } from "node:crypto";
import { CryptoError } from "./errors.js";
import {
  assertScalar,
  bytesToBigInt,
  encodePoint,
  GROUP_ORDER,
  hkdf,
  lengthPrefix,
  multiplyGenerator,
  type SpakeBytes,
  toSpakeBytes,
} from "./spake2plus-transcript.js";

/**
 * The long-lived SPAKE2+ values of a pairing code (DESIGN section 5) and the comparison code derived from
 * K_shared. Import them from spake2plus.ts, which re-exports this module.
 */

export interface SpakeSecrets {
  w0: bigint;
  w1: bigint;
}

/** What the gateway stores for a code: w0 and L = w1*P (65 bytes, uncompressed). */
export interface SpakeVerifier {
  w0: bigint;
  L: Uint8Array;
}

/** PBKDF2 output: two 40-byte halves, 64 bits more than n, so the reduction mod n is unbiased to 2^-64. */
const PBKDF_OUTPUT_BYTES = 80;
/** Refuses absurd iteration counts (a hostile gateway could otherwise stall a device for hours). */
export const SPAKE_MAX_PBKDF_ITERATIONS = 10_000_000;
/** At least 128 bits of salt (NIST SP 800-132); the gateway mints 16 random bytes. */
export const SPAKE_MIN_SALT_BYTES = 16;

/**
 * w0s || w1s = PBKDF2-HMAC-SHA256(len(code) || code, salt, iterations, 80 bytes), len being the code's
 * byte count as 8 bytes little-endian (RFC 9383's transcript length encoding); each 40-byte half read
 * big-endian, w0 = w0s mod n, w1 = w1s mod n. A string code is taken as its UTF-8 bytes, unnormalized:
 * callers pass the canonical PIN ("482193", not the typed "7QX2-482193") or the QR secret.
 */
export function deriveSpakeSecrets(code: SpakeBytes, salt: Uint8Array, iterations: number): SpakeSecrets {
  const password = toSpakeBytes(code, "code");
  if (password.length === 0) throw new RangeError("the code must not be empty");
  if (!(salt instanceof Uint8Array) || salt.length < SPAKE_MIN_SALT_BYTES)
    throw new RangeError(`the salt must be at least ${SPAKE_MIN_SALT_BYTES} bytes`);
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > SPAKE_MAX_PBKDF_ITERATIONS)
    throw new RangeError(`iterations must be an integer in [1, ${SPAKE_MAX_PBKDF_ITERATIONS}]`);
  const input = Buffer.concat([lengthPrefix(password.length), password]);
  const out = pbkdf2Sync(input, salt, iterations, PBKDF_OUTPUT_BYTES, "sha256");
  const half = PBKDF_OUTPUT_BYTES / 2;
  return {
    w0: bytesToBigInt(out.subarray(0, half)) % GROUP_ORDER,
    w1: bytesToBigInt(out.subarray(half)) % GROUP_ORDER,
  };
}

/** The gateway's record: w0 and L = w1*P. w1 = 0 (probability 2^-256) has no L and is `invalid_scalar`. */
export function computeVerifier(w0: bigint, w1: bigint): { w0: bigint; L: Buffer } {
  assertScalar(w0, "w0");
  assertScalar(w1, "w1");
  if (w1 === 0n) throw new CryptoError("invalid_scalar", "w1 must not be 0");
  return { w0, L: encodePoint(multiplyGenerator(w1), "L") };
}

const COMPARISON_INFO = "palyra-pairing-comparison-v1";

/**
 * The 6-digit comparison code both sides show: HKDF-SHA256(salt = none, ikm = K_shared, info =
 * "palyra-pairing-comparison-v1", 8 bytes) read as a big-endian unsigned 64-bit integer, mod 10^6,
 * zero-padded to 6 digits ("004217"). The reduction's bias is below 10^6 / 2^64 (about 2^-44).
 */
export function comparisonCode(kShared: Uint8Array): string {
  if (!(kShared instanceof Uint8Array) || kShared.length !== 32) throw new RangeError("K_shared is 32 bytes");
  const value = hkdf(kShared, COMPARISON_INFO, 8).readBigUInt64BE(0) % 1_000_000n;
  return value.toString().padStart(6, "0");
}
