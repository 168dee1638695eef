import { OID_ECDSA_SHA256, OID_ECDSA_SHA384, OID_ECDSA_SHA512 } from "./certificate-der.js";
import {
  DER_BIT_STRING,
  DER_INTEGER,
  DER_SEQUENCE,
  derBytes,
  derContent,
  isWellFormedDer,
  readDerChildren,
  readDerElement,
} from "./der-reader.js";
import { derSequence } from "./der-writer.js";

/**
 * The shape of a PKCS#10 request (RFC 2986), read from outside input without interpreting more than
 * the CA needs:
 *
 *   CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 *   CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name,
 *                                           subjectPKInfo SubjectPublicKeyInfo, attributes [0] }
 *
 * The whole input must be well-framed DER first; subject and attributes are covered by the signature
 * but otherwise ignored (the CA never copies anything from them).
 */

export interface CsrStructure {
  /** The CertificationRequestInfo exactly as received: what the signature covers. */
  signedBytes: Uint8Array;
  /** The SubjectPublicKeyInfo as received (not yet checked to be a key). */
  spkiDer: Uint8Array;
  /** The signatureAlgorithm AlgorithmIdentifier DER. */
  signatureAlgorithmDer: Uint8Array;
  /** The signature BIT STRING's bytes (an ECDSA signature is DER-encoded r, s). */
  signature: Uint8Array;
}

const ATTRIBUTES = 0xa0;
const VERSION_1 = Buffer.of(0x00);

/** The parts of a CSR, or undefined when the bytes are not shaped like one. */
export function readCsrStructure(der: Uint8Array): CsrStructure | undefined {
  if (!isWellFormedDer(der)) return undefined;
  const outer = readDerElement(der, 0);
  if (outer?.tag !== DER_SEQUENCE) return undefined;
  const top = readDerChildren(der, outer, [DER_SEQUENCE, DER_SEQUENCE, DER_BIT_STRING]);
  if (top === undefined) return undefined;
  const [info, algorithm, signature] = top as [typeof outer, typeof outer, typeof outer];
  const fields = readDerChildren(der, info, [DER_INTEGER, DER_SEQUENCE, DER_SEQUENCE, ATTRIBUTES]);
  if (fields === undefined || !VERSION_1.equals(derContent(der, fields[0] as typeof outer))) return undefined;
  // The first content byte of a BIT STRING counts unused bits: a signature has none.
  const bits = derContent(der, signature);
  if (bits.length < 2 || bits[0] !== 0) return undefined;
  return {
    signedBytes: derBytes(der, info),
    spkiDer: derBytes(der, fields[2] as typeof outer),
    signatureAlgorithmDer: derBytes(der, algorithm),
    signature: bits.subarray(1),
  };
}

// ECDSA AlgorithmIdentifiers have no parameters (RFC 5758 section 3.2): each is exactly SEQUENCE { OID }.
const ECDSA_HASHES: readonly (readonly [Buffer, string])[] = [
  [derSequence(OID_ECDSA_SHA256), "sha256"],
  [derSequence(OID_ECDSA_SHA384), "sha384"],
  [derSequence(OID_ECDSA_SHA512), "sha512"],
];

/** The node:crypto hash of an ecdsa-with-SHA256/384/512 AlgorithmIdentifier; undefined for anything else. */
export function ecdsaHashOf(algorithmDer: Uint8Array): string | undefined {
  return ECDSA_HASHES.find(([encoded]) => encoded.equals(algorithmDer))?.[1];
}
