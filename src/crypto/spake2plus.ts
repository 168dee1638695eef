import type { Random } from "../common/random.js";
import { constantTimeEqual } from "./constant-time.js";
import { CryptoError } from "./errors.js";
import type { SpakeSecrets, SpakeVerifier } from "./spake2plus-secrets.js";
import {
  assertScalar,
  bytesToBigInt,
  decodePoint,
  encodePoint,
  encodeTranscript,
  GROUP_ORDER,
  type KeySchedule,
  keySchedule,
  M,
  multiply,
  multiplyGenerator,
  N,
  POINT_BYTES,
  SCALAR_BYTES,
  type SpakeBytes,
  type SpakePoint,
  toSpakeBytes,
} from "./spake2plus-transcript.js";

/**
 * SPAKE2+ (RFC 9383), suite P256-SHA256-HKDF-SHA256-HMAC-SHA256, as DESIGN section 5 uses it: the device
 * is the prover (knows the code, hence w0 and w1), the gateway the verifier (stores only w0 and L = w1*P).
 *
 *   deriveSpakeSecrets(code, salt, iterations)              -> { w0, w1 }      both sides (PBKDF2)
 *   computeVerifier(w0, w1)                                 -> { w0, L }       gateway, when minting
 *   encodeScalar(w0) / decodeScalar(bytes)                  -> 32 bytes big-endian, for storage
 *   proverStart(w0, random)                                 -> { x, shareP }   device sends shareP
 *   verifierRespond({ w0, L }, shareP, identities, random)  -> { shareV, confirmV, expectedConfirmP, kMain, kShared }
 *   proverFinish({ w0, w1, x, shareP }, shareV, identities) -> { confirmP, expectedConfirmV, kMain, kShared }
 *   verifyConfirmation(expected, received)                  -> boolean (constant time); assertConfirmation throws
 *   comparisonCode(kShared)                                 -> "048213", shown on both sides
 *
 * identities = { context, idProver, idVerifier } (bytes, or strings taken as UTF-8). The device checks
 * confirmV (verifyConfirmation(expectedConfirmV, confirmV)) before it uses a key or sends confirmP; the
 * gateway checks confirmP before it trusts kMain or kShared. Shares are 65-byte uncompressed points:
 * another length or prefix, a point off the curve, or the identity is CryptoError("invalid_point").
 * The ephemeral x and y are uniform in [1, n-1] by rejection sampling over 32 bytes of the injected
 * Random, so a Random that hands out exactly the RFC's x (or y) bytes reproduces the RFC vectors.
 * Group, codecs, transcript and key schedule: spake2plus-transcript.ts; PBKDF, verifier record and
 * comparison code: spake2plus-secrets.ts.
 */

export {
  comparisonCode,
  computeVerifier,
  deriveSpakeSecrets,
  SPAKE_MAX_PBKDF_ITERATIONS,
  SPAKE_MIN_SALT_BYTES,
  type SpakeSecrets,
  type SpakeVerifier,
} from "./spake2plus-secrets.js";
export { decodeScalar, encodeScalar, type SpakeBytes } from "./spake2plus-transcript.js";

/** Length of a share on the wire (an uncompressed P-256 point), for callers sizing protobuf checks. */
export const SPAKE_SHARE_BYTES = POINT_BYTES;
/** Length of confirmP / confirmV (HMAC-SHA256). */
export const SPAKE_CONFIRMATION_BYTES = 32;

export interface SpakeIdentities {
  /** Binds the session (DESIGN: "palyra-pairing-v1" || session id || challenge || ...). */
  context: SpakeBytes;
  /** The device id. */
  idProver: SpakeBytes;
  /** "palyra-gateway:" + CA SPKI fingerprint. */
  idVerifier: SpakeBytes;
}

export interface ProverStart {
  /** Ephemeral secret: keep it in memory until proverFinish; never log or persist it. */
  x: bigint;
  shareP: Buffer;
}

export interface ProverResult {
  /** Send to the verifier, and only after expectedConfirmV matched the verifier's confirmV. */
  confirmP: Buffer;
  expectedConfirmV: Buffer;
  kMain: Buffer;
  kShared: Buffer;
}

export interface VerifierResult {
  shareV: Buffer;
  confirmV: Buffer;
  /** Compare with the prover's confirmP (verifyConfirmation) before trusting kMain or kShared. */
  expectedConfirmP: Buffer;
  kMain: Buffer;
  kShared: Buffer;
}

const MAX_SCALAR_DRAWS = 64;

/** Uniform scalar in [1, n-1]: 32 bytes big-endian, redrawn while 0 or >= n (about 2^-32 per draw). */
function randomScalar(random: Random): bigint {
  for (let i = 0; i < MAX_SCALAR_DRAWS; i++) {
    const bytes = random.bytes(SCALAR_BYTES);
    if (!(bytes instanceof Uint8Array) || bytes.length !== SCALAR_BYTES)
      throw new TypeError("the random source returned the wrong number of bytes");
    const k = bytesToBigInt(bytes);
    if (k > 0n && k < GROUP_ORDER) return k;
  }
  throw new Error("the random source keeps returning out-of-range scalars (broken RNG)");
}

/** Prover step 1: x uniform in [1, n-1], shareP = x*P + w0*M. */
export function proverStart(w0: bigint, random: Random): ProverStart {
  assertScalar(w0, "w0");
  const x = randomScalar(random);
  return { x, shareP: encodePoint(multiplyGenerator(x).add(multiply(M, w0)), "shareP") };
}

/** Prover step 2: checks shareV; Z = x*(shareV - w0*N), V = w1*(shareV - w0*N); keys and both MACs. */
export function proverFinish(
  state: SpakeSecrets & { x: bigint; shareP: Uint8Array },
  shareV: Uint8Array,
  identities: SpakeIdentities,
): ProverResult {
  const { keys } = proverFinishDetailed(state, shareV, identities);
  return {
    confirmP: keys.confirmP,
    expectedConfirmV: keys.confirmV,
    kMain: keys.kMain,
    kShared: keys.kShared,
  };
}

/**
 * Verifier, one round trip: checks L and shareP, draws y; shareV = y*P + w0*N, Z = y*(shareP - w0*M),
 * V = y*L; keys and both MACs. shareV and confirmV go back to the prover.
 */
export function verifierRespond(
  verifier: SpakeVerifier,
  shareP: Uint8Array,
  identities: SpakeIdentities,
  random: Random,
): VerifierResult {
  const { shareV, keys } = verifierRespondDetailed(verifier, shareP, identities, random);
  return {
    shareV,
    confirmV: keys.confirmV,
    expectedConfirmP: keys.confirmP,
    kMain: keys.kMain,
    kShared: keys.kShared,
  };
}

/** Constant-time comparison of a confirmation MAC; false on any mismatch, including length or type. */
export function verifyConfirmation(expected: Uint8Array, received: Uint8Array): boolean {
  if (!(expected instanceof Uint8Array) || !(received instanceof Uint8Array)) return false;
  return constantTimeEqual(expected, received);
}

/** verifyConfirmation that throws CryptoError("confirmation_failed") on a mismatch. */
export function assertConfirmation(expected: Uint8Array, received: Uint8Array): void {
  if (!verifyConfirmation(expected, received))
    throw new CryptoError(
      "confirmation_failed",
      "key confirmation failed (wrong code or someone in the middle)",
    );
}

/** Every intermediate value of one side's computation (for the RFC vector tests). */
export interface SpakeDetail {
  Z: Buffer;
  V: Buffer;
  TT: Buffer;
  keys: KeySchedule;
}

function proverFinishDetailed(
  state: SpakeSecrets & { x: bigint; shareP: Uint8Array },
  shareV: Uint8Array,
  identities: SpakeIdentities,
): SpakeDetail {
  if (state === null || typeof state !== "object") throw new TypeError("the prover state is required");
  assertScalar(state.w0, "w0");
  assertScalar(state.w1, "w1");
  assertScalar(state.x, "x");
  if (state.x === 0n) throw new CryptoError("invalid_scalar", "x must not be 0");
  decodePoint(state.shareP, "shareP");
  const ids = identityBytes(identities);
  const tmp = decodePoint(shareV, "shareV").subtract(multiply(N, state.w0));
  return schedule(ids, state.shareP, shareV, multiply(tmp, state.x), multiply(tmp, state.w1), state.w0);
}

function verifierRespondDetailed(
  verifier: SpakeVerifier,
  shareP: Uint8Array,
  identities: SpakeIdentities,
  random: Random,
): SpakeDetail & { shareV: Buffer } {
  if (verifier === null || typeof verifier !== "object") throw new TypeError("the verifier is required");
  assertScalar(verifier.w0, "w0");
  const L = decodePoint(verifier.L, "L");
  const X = decodePoint(shareP, "shareP");
  const ids = identityBytes(identities);
  const y = randomScalar(random);
  const shareV = encodePoint(multiplyGenerator(y).add(multiply(N, verifier.w0)), "shareV");
  const Z = multiply(X.subtract(multiply(M, verifier.w0)), y);
  return { shareV, ...schedule(ids, shareP, shareV, Z, multiply(L, y), verifier.w0) };
}

/**
 * For tests only (the RFC 9383 vectors check Z, V, TT and the confirmation keys): the computations
 * behind proverFinish and verifierRespond with every intermediate value. Production code must not use it.
 */
export const spake2plusInternalsForTests = Object.freeze({ proverFinishDetailed, verifierRespondDetailed });

type IdentityBytes = [context: Buffer, idProver: Buffer, idVerifier: Buffer];

function identityBytes(identities: SpakeIdentities): IdentityBytes {
  if (identities === null || typeof identities !== "object") throw new TypeError("identities are required");
  return [
    toSpakeBytes(identities.context, "context"),
    toSpakeBytes(identities.idProver, "idProver"),
    toSpakeBytes(identities.idVerifier, "idVerifier"),
  ];
}

/** Z and V are the identity only if the peer knows w0 and chose its share so; refused as invalid_point. */
function schedule(
  [context, idProver, idVerifier]: IdentityBytes,
  shareP: Uint8Array,
  shareV: Uint8Array,
  zPoint: SpakePoint,
  vPoint: SpakePoint,
  w0: bigint,
): SpakeDetail {
  const Z = encodePoint(zPoint, "Z");
  const V = encodePoint(vPoint, "V");
  const TT = encodeTranscript({ context, idProver, idVerifier, shareP, shareV, Z, V, w0 });
  return { Z, V, TT, keys: keySchedule(TT, shareP, shareV) };
}
