import { createPublicKey, generateKeyPairSync, type KeyObject, verify, webcrypto } from "node:crypto";
import { limits } from "../common/limits.js";
import { spkiFingerprint } from "../crypto/fingerprint.js";
import { IdentityError } from "./errors.js";
import { type CryptoKeyPair, ECDSA_SHA256, P256_KEY_PARAMS, x509 } from "./x509-setup.js";

/**
 * PKCS#10 certificate signing requests. A device (and the gateway, for its own server key) makes its key
 * pair locally and sends only a CSR; the CA checks the CSR's self-signature (proof of possession) and
 * that the key is ECDSA P-256, and uses nothing else from it.
 */

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
/** Signature hashes accepted on a CSR's ECDSA self-signature. */
const CSR_SIGNATURE_HASHES = new Set(["SHA-256", "SHA-384", "SHA-512"]);
const NODE_HASH: Record<string, string> = { "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };

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

  let csr: x509.Pkcs10CertificateRequest;
  let spkiDer: Buffer;
  let signatureAlgorithm: unknown;
  try {
    // Copy into a fresh ArrayBuffer: the library reads whole buffers, not views into pooled Buffers.
    csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der).buffer);
    spkiDer = Buffer.from(csr.publicKey.rawData);
    signatureAlgorithm = csr.signatureAlgorithm;
  } catch (err) {
    throw new IdentityError("invalid_csr", "the CSR could not be parsed as PKCS#10", { cause: err });
  }

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: "der", type: "spki" });
  } catch (err) {
    throw new IdentityError("unsupported_key", "the CSR's public key is of an unknown or malformed kind", {
      cause: err,
    });
  }
  if (!isP256Key(publicKey))
    throw new IdentityError("unsupported_key", `CSR keys must be ECDSA P-256, not ${describeKey(publicKey)}`);
  if (
    algorithmName(signatureAlgorithm) !== "ECDSA" ||
    !CSR_SIGNATURE_HASHES.has(hashName(signatureAlgorithm))
  )
    throw new IdentityError(
      "invalid_csr",
      "the CSR must be signed with ECDSA and SHA-256, SHA-384 or SHA-512",
    );

  // Verified with node:crypto over the exact bytes received (not a re-encoding), which is also several
  // times faster than going through WebCrypto.
  const parts = signedParts(der);
  let valid = false;
  try {
    valid =
      parts !== undefined &&
      verify(
        NODE_HASH[hashName(signatureAlgorithm)],
        parts.signedBytes,
        { key: publicKey, dsaEncoding: "der" },
        parts.signature,
      );
  } catch {
    valid = false;
  }
  if (!valid)
    throw new IdentityError(
      "invalid_csr",
      "the CSR signature does not verify: it was not signed by the key it names",
    );
  return { publicKey, spkiDer, keyFingerprint: spkiFingerprint(publicKey) };
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

/** `name` of a WebCrypto algorithm object (or the string itself), upper-cased; "" if absent. */
function algorithmName(algorithm: unknown): string {
  if (typeof algorithm === "string") return algorithm.toUpperCase();
  if (
    algorithm !== null &&
    typeof algorithm === "object" &&
    "name" in algorithm &&
    typeof algorithm.name === "string"
  )
    return algorithm.name.toUpperCase();
  return "";
}

function hashName(algorithm: unknown): string {
  if (algorithm === null || typeof algorithm !== "object" || !("hash" in algorithm)) return "";
  return algorithmName(algorithm.hash);
}

interface DerElement {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

/**
 * Reads the tag and definite length of the DER element at `offset` (single-byte tags only). Undefined
 * for indefinite BER lengths, non-minimal lengths and elements running past the end of `bytes`.
 */
function readDerElement(bytes: Uint8Array, offset: number): DerElement | undefined {
  if (offset + 2 > bytes.length) return undefined;
  const tag = bytes[offset] as number;
  if ((tag & 0x1f) === 0x1f) return undefined; // multi-byte tags: never in what we read
  const first = bytes[offset + 1] as number;
  let length = first;
  let contentStart = offset + 2;
  if (first >= 0x80) {
    const lengthBytes = first & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 length bytes cannot describe anything we accept.
    if (lengthBytes === 0 || lengthBytes > 4 || contentStart + lengthBytes > bytes.length) return undefined;
    if (bytes[contentStart] === 0) return undefined; // non-minimal length
    length = 0;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + (bytes[contentStart + i] as number);
    if (length < 0x80) return undefined; // long form for a short length is not DER
    contentStart += lengthBytes;
  }
  const end = contentStart + length;
  return end <= bytes.length ? { tag, start: offset, contentStart, end } : undefined;
}

/**
 * True when `bytes` is exactly one DER SEQUENCE with a definite length that covers the whole input
 * (no indefinite BER lengths, no truncation, no trailing bytes). Cheap, and done before the ASN.1 parser.
 */
export function isSingleDerSequence(bytes: Uint8Array): boolean {
  const outer = readDerElement(bytes, 0);
  return outer !== undefined && outer.tag === 0x30 && outer.end === bytes.length;
}

/**
 * The signed part (CertificationRequestInfo, as received) and the signature (the BIT STRING's bytes)
 * of `CertificationRequest ::= SEQUENCE { info, signatureAlgorithm, signature BIT STRING }`.
 */
function signedParts(der: Uint8Array): { signedBytes: Uint8Array; signature: Uint8Array } | undefined {
  const outer = readDerElement(der, 0);
  if (outer?.tag !== 0x30) return undefined;
  const info = readDerElement(der, outer.contentStart);
  if (info?.tag !== 0x30) return undefined;
  const algorithm = readDerElement(der, info.end);
  if (algorithm?.tag !== 0x30) return undefined;
  const signature = readDerElement(der, algorithm.end);
  if (signature?.tag !== 0x03 || signature.end !== outer.end) return undefined;
  // The first content byte of a BIT STRING counts unused bits: a signature has none.
  if (signature.end - signature.contentStart < 2 || der[signature.contentStart] !== 0) return undefined;
  return {
    signedBytes: der.subarray(info.start, info.end),
    signature: der.subarray(signature.contentStart + 1, signature.end),
  };
}
