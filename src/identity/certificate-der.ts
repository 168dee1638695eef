import { createHash } from "node:crypto";
import { isIP } from "node:net";
import {
  DER_TRUE,
  der,
  derBitString,
  derOctetString,
  derOid,
  derPrintableString,
  derSequence,
  derSet,
  ia5Bytes,
} from "./der-writer.js";

/**
 * The X.509 pieces of our leaf certificates in DER (RFC 5280), encoded exactly as @peculiar/x509 did
 * before this fast path existed (certificate-template.test.ts checks byte equality): names as
 * PrintableString, one attribute per RDN; extensions with `critical` written only when true.
 */

export const OID_EC_PUBLIC_KEY = derOid("1.2.840.10045.2.1");
export const OID_P256 = derOid("1.2.840.10045.3.1.7");
export const OID_ECDSA_SHA256 = derOid("1.2.840.10045.4.3.2");
export const OID_ECDSA_SHA384 = derOid("1.2.840.10045.4.3.3");
export const OID_ECDSA_SHA512 = derOid("1.2.840.10045.4.3.4");
/** AlgorithmIdentifier of ecdsa-with-SHA256, parameters absent (RFC 5758 section 3.2). */
export const ECDSA_SHA256_ALGORITHM = derSequence(OID_ECDSA_SHA256);
/** SubjectPublicKeyInfo of an uncompressed P-256 key, up to the 65-byte point (always 91 bytes long). */
export const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");
export const P256_SPKI_BYTES = P256_SPKI_PREFIX.length + 65;

const OID_COMMON_NAME = derOid("2.5.4.3");
const OID_ORGANIZATION = derOid("2.5.4.10");
const OID_SUBJECT_KEY_ID = derOid("2.5.29.14");
const OID_KEY_USAGE = derOid("2.5.29.15");
const OID_SUBJECT_ALT_NAME = derOid("2.5.29.17");
const OID_BASIC_CONSTRAINTS = derOid("2.5.29.19");
const OID_AUTHORITY_KEY_ID = derOid("2.5.29.35");
const OID_EXTENDED_KEY_USAGE = derOid("2.5.29.37");
const OID_SERVER_AUTH = derOid("1.3.6.1.5.5.7.3.1");
const OID_CLIENT_AUTH = derOid("1.3.6.1.5.5.7.3.2");

/** `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`. */
function extension(oid: Buffer, critical: boolean, value: Uint8Array): Buffer {
  return critical
    ? derSequence(oid, DER_TRUE, derOctetString(value))
    : derSequence(oid, derOctetString(value));
}

/** BasicConstraints cA=false (an empty SEQUENCE), critical. */
export const LEAF_BASIC_CONSTRAINTS_DER = extension(OID_BASIC_CONSTRAINTS, true, derSequence());
/** KeyUsage digitalSignature (bit 0: one named bit, seven unused), critical. */
export const LEAF_KEY_USAGE_DER = extension(OID_KEY_USAGE, true, Buffer.of(0x03, 0x02, 0x07, 0x80));
export const SERVER_AUTH_EKU_DER = extension(OID_EXTENDED_KEY_USAGE, false, derSequence(OID_SERVER_AUTH));
export const CLIENT_AUTH_EKU_DER = extension(OID_EXTENDED_KEY_USAGE, false, derSequence(OID_CLIENT_AUTH));

export interface NameAttributes {
  CN: string;
  O?: string;
}

/** `Name`: CN, then O when given, each its own RDN, as PrintableString. */
export function encodeName({ CN, O }: NameAttributes): Buffer {
  const rdn = (oid: Buffer, value: string) => derSet(derSequence(oid, derPrintableString(value)));
  return O === undefined
    ? derSequence(rdn(OID_COMMON_NAME, CN))
    : derSequence(rdn(OID_COMMON_NAME, CN), rdn(OID_ORGANIZATION, O));
}

export interface AltNames {
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  uris?: readonly string[];
}

/** SubjectAltName (not critical: the subject is not empty): DNS names, then IP addresses, then URIs. */
export function subjectAltNameExtension({ dnsNames = [], ipAddresses = [], uris = [] }: AltNames): Buffer {
  const names = [
    ...dnsNames.map((name) => der(0x82, ia5Bytes(name))),
    ...ipAddresses.map((address) => der(0x87, ipAddressBytes(address))),
    ...uris.map((uri) => der(0x86, ia5Bytes(uri))),
  ];
  if (names.length === 0) throw new RangeError("a SubjectAltName needs at least one name");
  return extension(OID_SUBJECT_ALT_NAME, false, derSequence(...names));
}

/** SubjectKeyIdentifier: the key id as an OCTET STRING. */
export function subjectKeyIdExtension(keyId: Uint8Array): Buffer {
  return extension(OID_SUBJECT_KEY_ID, false, derOctetString(keyId));
}

/** AuthorityKeyIdentifier with the keyIdentifier field only ([0] IMPLICIT OCTET STRING). */
export function authorityKeyIdExtension(keyId: Uint8Array): Buffer {
  return extension(OID_AUTHORITY_KEY_ID, false, derSequence(der(0x80, keyId)));
}

/**
 * RFC 5280 key identifier (method 1) of a canonical uncompressed P-256 SPKI: SHA-1 of the 65-byte
 * point that ends it. The caller makes sure the SPKI is canonical (see P256_SPKI_PREFIX).
 */
export function p256KeyIdentifier(spkiDer: Uint8Array): Buffer {
  if (!isCanonicalP256Spki(spkiDer)) throw new RangeError("expected the SPKI of an uncompressed P-256 key");
  return createHash("sha1").update(spkiDer.subarray(P256_SPKI_PREFIX.length)).digest();
}

/**
 * True when `spkiDer` is laid out as node:crypto exports a P-256 public key: named curve, uncompressed
 * point, 91 bytes. Framing only: whether the point is on the curve is for createPublicKey to check.
 */
export function isCanonicalP256Spki(spkiDer: Uint8Array): boolean {
  return (
    spkiDer.length === P256_SPKI_BYTES &&
    P256_SPKI_PREFIX.equals(spkiDer.subarray(0, P256_SPKI_PREFIX.length)) &&
    spkiDer[P256_SPKI_PREFIX.length] === 0x04
  );
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address (iPAddress GeneralName); zone ids are refused. */
export function ipAddressBytes(address: string): Buffer {
  const version = isIP(address);
  if (version === 4) return Buffer.from(address.split(".").map(Number));
  if (version !== 6 || address.includes("%")) throw new RangeError("not an IPv4 or IPv6 address");
  let text = address;
  let tail: number[] = [];
  const dotted = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    // An embedded IPv4 address ("::ffff:10.0.0.1") stands for the last two 16-bit groups.
    tail = [...ipAddressBytes(dotted[1] as string)];
    text = `${text.slice(0, dotted.index)}:0:0`;
  }
  const [head = "", rest] = text.split("::") as [string, string | undefined];
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const fill = rest === undefined ? 0 : 8 - left.length - right.length;
  const all = [...left, ...Array<string>(fill).fill("0"), ...right];
  const out = Buffer.alloc(16);
  for (const [i, group] of all.entries()) out.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  if (tail.length === 4) Buffer.from(tail).copy(out, 12);
  return out;
}

/** A BIT STRING around an ECDSA signature, for the certificate's signatureValue. */
export function signatureBitString(signatureDer: Uint8Array): Buffer {
  return derBitString(signatureDer);
}
