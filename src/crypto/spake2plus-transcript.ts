import { createHash, createHmac, hkdfSync } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import { CryptoError } from "./errors.js";
import { multiplyBase, multiplyPoint } from "./spake2plus-multiply.js";

/**
 * SPAKE2+ building blocks (RFC 9383, suite P256-SHA256-HKDF-SHA256-HMAC-SHA256): the group, the point
 * and scalar codecs used at every boundary, the transcript TT and the key schedule. The protocol roles
 * are in spake2plus.ts. @noble/curves does the P-256 point codecs and additions, OpenSSL the scalar
 * multiplications; hashing, HKDF and HMAC are node:crypto.
 */

export type SpakePoint = InstanceType<typeof p256.Point>;
export const Point = p256.Point;
/** Order n of the P-256 group (the cofactor h is 1, so no cofactor multiplication is needed). */
export const GROUP_ORDER: bigint = Point.Fn.ORDER;
export const SCALAR_BYTES = 32;
/** SEC1 uncompressed: 0x04 || X (32) || Y (32). The only share encoding accepted. */
export const POINT_BYTES = 65;
export const HASH_BYTES = 32;

// RFC 9383 section 4 (P-256 M and N, published compressed).
export const M: SpakePoint = Point.fromHex(
  "02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f",
);
export const N: SpakePoint = Point.fromHex(
  "03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49",
);
const M_BYTES = Buffer.from(M.toBytes(false));
const N_BYTES = Buffer.from(N.toBytes(false));

/**
 * k*P for a secret scalar in [0, n-1] (0 gives the identity). OpenSSL does the multiplication
 * (spake2plus-multiply.ts): about 0.45 ms for any point, where noble's constant-time ladder takes 3 ms,
 * or 0.55 ms with a 3 MB precomputed table per point.
 */
export function multiply(point: SpakePoint, k: bigint): SpakePoint {
  return multiplyPoint(point, k);
}

/** k*G for a secret scalar in [0, n-1]. */
export function multiplyGenerator(k: bigint): SpakePoint {
  return multiplyBase(k);
}

/** Asserts a scalar is a bigint in [0, n-1] (what w0, w1 and the ephemeral scalars must be). */
export function assertScalar(k: unknown, name: string): asserts k is bigint {
  if (typeof k !== "bigint") throw new TypeError(`${name} must be a bigint`);
  if (k < 0n || k >= GROUP_ORDER) throw new CryptoError("invalid_scalar", `${name} is not in [0, n-1]`);
}

/** A scalar in [0, n-1] as 32 bytes, big-endian (the storage and transcript form of w0). */
export function encodeScalar(k: bigint): Buffer {
  assertScalar(k, "scalar");
  return Buffer.from(k.toString(16).padStart(SCALAR_BYTES * 2, "0"), "hex");
}

/** Inverse of encodeScalar: exactly 32 bytes, big-endian, below n; anything else is `invalid_scalar`. */
export function decodeScalar(bytes: Uint8Array): bigint {
  if (!(bytes instanceof Uint8Array) || bytes.length !== SCALAR_BYTES)
    throw new CryptoError("invalid_scalar", "a scalar is 32 bytes");
  const k = bytesToBigInt(bytes);
  if (k >= GROUP_ORDER) throw new CryptoError("invalid_scalar", "scalar is not below the group order");
  return k;
}

/** Bytes, or a string taken as its UTF-8 bytes (codes, context, identities). */
export type SpakeBytes = Uint8Array | string;

export function toSpakeBytes(value: SpakeBytes, name: string): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`${name} must be a string or a Uint8Array`);
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0
    ? 0n
    : BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex")}`);
}

/**
 * Decodes a point received from outside (a share, or the stored L): exactly 65 bytes, prefix 0x04, both
 * coordinates below p, on the curve, not the identity. Compressed, hybrid and truncated encodings, and
 * anything that is not a Uint8Array, are `invalid_point`; nothing else is ever thrown.
 */
export function decodePoint(bytes: unknown, name: string): SpakePoint {
  if (!(bytes instanceof Uint8Array) || bytes.length !== POINT_BYTES || bytes[0] !== 0x04)
    throw new CryptoError("invalid_point", `${name} is not an uncompressed P-256 point (65 bytes, 0x04)`);
  let point: SpakePoint;
  try {
    point = Point.fromBytes(Uint8Array.from(bytes));
    point.assertValidity();
  } catch (err) {
    throw new CryptoError("invalid_point", `${name} is not a point on P-256`, { cause: err });
  }
  if (point.is0()) throw new CryptoError("invalid_point", `${name} is the identity`);
  return point;
}

/** Uncompressed SEC1 bytes; the identity has no encoding and is `invalid_point` (never a valid Z, V or share). */
export function encodePoint(point: SpakePoint, name: string): Buffer {
  if (point.is0()) throw new CryptoError("invalid_point", `${name} is the identity`);
  // One field inversion to affine form: toBytes on a projective point would invert twice.
  return Buffer.from(Point.fromAffine(point.toAffine()).toBytes(false));
}

export interface TranscriptInput {
  context: Uint8Array;
  idProver: Uint8Array;
  idVerifier: Uint8Array;
  shareP: Uint8Array;
  shareV: Uint8Array;
  Z: Uint8Array;
  V: Uint8Array;
  w0: bigint;
}

/** RFC 9383 TT: each field prefixed with its length as 8 bytes little-endian, in the RFC's order. */
export function encodeTranscript(t: TranscriptInput): Buffer {
  const fields = [t.context, t.idProver, t.idVerifier, M_BYTES, N_BYTES, t.shareP, t.shareV, t.Z, t.V];
  const parts: Uint8Array[] = [];
  for (const field of [...fields, encodeScalar(t.w0)]) parts.push(lengthPrefix(field.length), field);
  return Buffer.concat(parts);
}

/** The 8-byte little-endian length RFC 9383 puts before every transcript field (and the PBKDF input). */
export function lengthPrefix(length: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt(length));
  return out;
}

export interface KeySchedule {
  kMain: Buffer;
  kConfirmP: Buffer;
  kConfirmV: Buffer;
  kShared: Buffer;
  /** HMAC(K_confirmP, shareV): what the prover sends. */
  confirmP: Buffer;
  /** HMAC(K_confirmV, shareP): what the verifier sends. */
  confirmV: Buffer;
}

const NO_SALT = Buffer.alloc(0);

export function hkdf(ikm: Uint8Array, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync("sha256", ikm, NO_SALT, info, length));
}

/** K_main = SHA-256(TT); confirmation keys and K_shared by HKDF with no salt; both confirmation MACs. */
export function keySchedule(tt: Uint8Array, shareP: Uint8Array, shareV: Uint8Array): KeySchedule {
  const kMain = createHash("sha256").update(tt).digest();
  const confirmation = hkdf(kMain, "ConfirmationKeys", 2 * HASH_BYTES);
  const kConfirmP = confirmation.subarray(0, HASH_BYTES);
  const kConfirmV = confirmation.subarray(HASH_BYTES);
  return {
    kMain,
    kConfirmP,
    kConfirmV,
    kShared: hkdf(kMain, "SharedKey", HASH_BYTES),
    confirmP: createHmac("sha256", kConfirmP).update(shareV).digest(),
    confirmV: createHmac("sha256", kConfirmV).update(shareP).digest(),
  };
}
