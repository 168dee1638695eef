import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  verify,
  webcrypto,
} from "node:crypto";
import { limits } from "../common/limits.js";
import { isCanonicalP256Spki, P256_SPKI_PREFIX } from "./certificate-der.js";
import { ecdsaHashOf, readCsrStructure } from "./csr-structure.js";
import { isSingleDerSequence } from "./der-reader.js";
import { IdentityError } from "./errors.js";
import { type CryptoKeyPair, ECDSA_SHA256, P256_KEY_PARAMS, x509 } from "./x509-setup.js";

/**
 * PKCS#10 certificate signing requests. A device (and the gateway, for its own server key) makes its key
 * pair locally and sends only a CSR; the CA checks the CSR's self-signature (proof of possession) and
 * that the key is ECDSA P-256, and uses nothing else from it.
 */

export { isSingleDerSequence };

export interface P256KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface VerifiedCsr {
  /** The requested public key (EC P-256). */
  publicKey: KeyObject;
  /** Its SubjectPublicKeyInfo DER. */
  spkiDer: Buffer;
  /** Lowercase hex SHA-256 of `spkiDer` (the "CSR key fingerprint" shown on approval cards). */
  keyFingerprint: string;
}

/** Subject put into CSRs when the caller gives none. The CA ignores it; it only keeps tools happy. */
export const DEFAULT_CSR_SUBJECT = "CN=palyra";

const P256_CURVE = "prime256v1";
const CSR_PEM_LABEL = "CERTIFICATE REQUEST";
const CSR_PEM_BLOCK =
  /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([^-]*)-----END (NEW )?CERTIFICATE REQUEST-----/g;
/** Base64 grows 4/3, line breaks (CRLF every 64 characters) and headers add a little: twice the DER is ample. */
const MAX_CSR_PEM_CHARS = limits.maxCsrBytes * 2 + 256;

export function generateP256KeyPair(): P256KeyPair {
  return generateKeyPairSync("ec", { namedCurve: P256_CURVE });
}

/** True when `key` (public or private) is an EC key on P-256. */
export function isP256Key(key: KeyObject): boolean {
  return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === P256_CURVE;
}

/** Describes a key for error messages: "ec secp384r1", "rsa 2048-bit", "ed25519". */
export function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === "ec") return `ec ${details?.namedCurve ?? "unknown curve"}`;
  if (details?.modulusLength !== undefined) return `${key.asymmetricKeyType} ${details.modulusLength}-bit`;
  return String(key.asymmetricKeyType ?? key.type);
}

/** Makes a DER PKCS#10 request for a P-256 key pair, signed with ECDSA-SHA256 by its private key. */
export async function createCsr(
  privateKey: KeyObject,
  publicKey: KeyObject,
  subject: string = DEFAULT_CSR_SUBJECT,
): Promise<Buffer> {
  if (privateKey.type !== "private" || publicKey.type !== "public")
    throw new IdentityError("invalid_key", "createCsr needs a private key and its public key");
  if (!isP256Key(privateKey))
    throw new IdentityError(
      "unsupported_key",
      `CSR keys must be ECDSA P-256, not ${describeKey(privateKey)}`,
    );
  const spki = publicKey.export({ type: "spki", format: "der" });
  if (!createPublicKey(privateKey).export({ type: "spki", format: "der" }).equals(spki))
    throw new IdentityError("invalid_key", "the public key does not belong to the private key");
  let name: x509.Name | undefined;
  try {
    name = new x509.Name(subject);
  } catch {
    name = undefined;
  }
  // The parser is lenient: text without any `TYPE=value` yields an empty name rather than an error.
  if (name === undefined || name.toJSON().length === 0)
    throw new IdentityError("invalid_csr", "the CSR subject is not a distinguished name such as CN=name");
  const subtle = webcrypto.subtle;
  const keys = {
    privateKey: await subtle.importKey(
      "pkcs8",
      privateKey.export({ type: "pkcs8", format: "der" }),
      P256_KEY_PARAMS,
      false,
      ["sign"],
    ),
    publicKey: await subtle.importKey("spki", spki, P256_KEY_PARAMS, true, ["verify"]),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys: keys as CryptoKeyPair,
    signingAlgorithm: ECDSA_SHA256,
  });
  return Buffer.from(csr.rawData);
}

/**
 * Parses a DER CSR from outside, verifies its self-signature and requires an EC P-256 key. Size and
 * framing are checked before any parsing; every failure is an IdentityError (`invalid_csr`, or
 * `unsupported_key` for a well-formed CSR with another kind of key), never a crash.
 */
export async function parseAndVerifyCsr(der: Uint8Array): Promise<VerifiedCsr> {
  if (!(der instanceof Uint8Array))
    throw new IdentityError("invalid_csr", "a CSR must be DER bytes (convert PEM with csrFromPem)");
  if (der.length === 0) throw new IdentityError("invalid_csr", "the CSR is empty");
  if (der.length > limits.maxCsrBytes)
    throw new IdentityError("invalid_csr", `the CSR is larger than ${limits.maxCsrBytes} bytes`);
  if (!isSingleDerSequence(der))
    throw new IdentityError(
      "invalid_csr",
      "the CSR is not one DER-encoded structure (truncated or trailing bytes)",
    );

  const parts = readCsrStructure(der);
  if (parts === undefined)
    throw new IdentityError("invalid_csr", "the CSR could not be parsed as PKCS#10 (malformed structure)");

  const received = Buffer.from(parts.spkiDer);
  const publicKey = importCsrKey(received);
  const hash = ecdsaHashOf(parts.signatureAlgorithmDer);
  if (hash === undefined)
    throw new IdentityError(
      "invalid_csr",
      "the CSR must be signed with ECDSA and SHA-256, SHA-384 or SHA-512",
    );

  // Verified with node:crypto over the exact bytes received (not a re-encoding).
  let valid = false;
  try {
    valid = verify(hash, parts.signedBytes, { key: publicKey, dsaEncoding: "der" }, parts.signature);
  } catch {
    valid = false;
  }
  if (!valid)
    throw new IdentityError(
      "invalid_csr",
      "the CSR signature does not verify: it was not signed by the key it names",
    );
  // Certificates carry the canonical form (named curve, uncompressed point): almost always the bytes
  // received, which the import has just validated. A compressed point is written out uncompressed
  // (OpenSSL would export it in the form it was read).
  const spkiDer = isCanonicalP256Spki(received) ? received : uncompressedSpki(publicKey);
  return { publicKey, spkiDer, keyFingerprint: createHash("sha256").update(spkiDer).digest("hex") };
}

/**
 * The CSR's public key, which must be a valid P-256 point. The usual canonical SPKI (named curve,
 * uncompressed point) is imported as JWK: the same validation (on the curve, in the group), without
 * OpenSSL 3's DER decoder, which costs more than the ECDSA verification itself. Other encodings go
 * through the DER decoder, which also names the kind of a refused key.
 */
function importCsrKey(spkiDer: Buffer): KeyObject {
  const malformed = (err: unknown) =>
    new IdentityError("unsupported_key", "the CSR's public key is of an unknown or malformed kind", {
      cause: err,
    });
  if (isCanonicalP256Spki(spkiDer)) {
    const point = spkiDer.subarray(P256_SPKI_PREFIX.length + 1);
    const jwk = {
      kty: "EC",
      crv: "P-256",
      x: point.subarray(0, 32).toString("base64url"),
      y: point.subarray(32).toString("base64url"),
    };
    try {
      return createPublicKey({ key: jwk, format: "jwk" });
    } catch (err) {
      throw malformed(err);
    }
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: "der", type: "spki" });
  } catch (err) {
    throw malformed(err);
  }
  if (!isP256Key(publicKey))
    throw new IdentityError("unsupported_key", `CSR keys must be ECDSA P-256, not ${describeKey(publicKey)}`);
  return publicKey;
}

function uncompressedSpki(publicKey: KeyObject): Buffer {
  const { x = "", y = "" } = publicKey.export({ format: "jwk" });
  const point = [Buffer.of(0x04), Buffer.from(x, "base64url"), Buffer.from(y, "base64url")];
  const spki = Buffer.concat([P256_SPKI_PREFIX, ...point]);
  if (!isCanonicalP256Spki(spki))
    throw new IdentityError("unsupported_key", "the CSR's key could not be re-encoded");
  return spki;
}

/** Extracts the DER of the one CSR in a PEM text (label `CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`). */
export function csrFromPem(pem: string): Buffer {
  if (typeof pem !== "string") throw new IdentityError("invalid_csr", "a PEM CSR must be text");
  if (pem.length > MAX_CSR_PEM_CHARS)
    throw new IdentityError("invalid_csr", `the PEM CSR is longer than ${MAX_CSR_PEM_CHARS} characters`);
  const blocks = [...pem.matchAll(CSR_PEM_BLOCK)];
  if (blocks.length !== 1)
    throw new IdentityError("invalid_csr", "expected exactly one -----BEGIN CERTIFICATE REQUEST----- block");
  const [, beginNew, body = "", endNew] = blocks[0] as RegExpMatchArray;
  if (beginNew !== endNew)
    throw new IdentityError("invalid_csr", "the PEM CSR's BEGIN and END labels differ");
  const base64 = body.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0)
    throw new IdentityError("invalid_csr", "the PEM CSR's body is not base64");
  const der = Buffer.from(base64, "base64");
  if (der.length > limits.maxCsrBytes)
    throw new IdentityError("invalid_csr", `the CSR is larger than ${limits.maxCsrBytes} bytes`);
  return der;
}

export function csrToPem(der: Uint8Array): string {
  return `${x509.PemConverter.encode(new Uint8Array(der), CSR_PEM_LABEL)}\n`;
}
