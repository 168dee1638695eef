import type { KeyObject } from "node:crypto";
import { sign } from "node:crypto";
import {
  authorityKeyIdExtension,
  ECDSA_SHA256_ALGORITHM,
  isCanonicalP256Spki,
  p256KeyIdentifier,
  signatureBitString,
  subjectKeyIdExtension,
} from "./certificate-der.js";
import {
  DER_SEQUENCE,
  type DerElement,
  derBytes,
  listDerChildren,
  readDerChildren,
  readDerElement,
} from "./der-reader.js";
import { der, derSequence, derTime, derUnsignedInteger } from "./der-writer.js";

/**
 * Leaf certificates built directly in DER and signed with node:crypto: the CA makes one ECDSA
 * signature per certificate, and building the rest this way costs tens of microseconds instead of the
 * milliseconds @peculiar/x509's object model took. The layout is fixed (RFC 5280 section 4.1):
 *
 *   TBSCertificate ::= SEQUENCE { [0] version v3, serialNumber, signature ecdsa-with-SHA256, issuer,
 *                                 validity { notBefore, notAfter }, subject, subjectPublicKeyInfo,
 *                                 [3] extensions (profile extensions, then SKI, then AKI) }
 *
 * What goes into the subject and the profile extensions is decided in certificate-profiles.ts.
 */

const VERSION_3 = der(0xa0, Buffer.of(0x02, 0x01, 0x02));
const SERIAL_BYTES = 16;

export interface LeafTemplateInput {
  /** 16 bytes, top bit clear, first byte non-zero (randomSerialHex). */
  serial: Uint8Array;
  /** The CA certificate's subject Name DER, as it is in the CA certificate. */
  issuerDer: Uint8Array;
  /** Whole seconds (milliseconds are dropped when encoded). */
  notBefore: Date;
  notAfter: Date;
  subjectDer: Uint8Array;
  /** The certified key: a canonical uncompressed P-256 SubjectPublicKeyInfo (91 bytes). */
  spkiDer: Uint8Array;
  /** The profile's extensions, each a complete Extension DER, in order. */
  extensionsDer: readonly Uint8Array[];
  /** The CA's key identifier, written as the AuthorityKeyIdentifier. */
  authorityKeyId: Uint8Array;
}

/** The TBSCertificate DER of a leaf (what the CA signs). */
export function leafTbsCertificate(input: LeafTemplateInput): Buffer {
  const { serial, spkiDer } = input;
  if (serial.length !== SERIAL_BYTES || (serial[0] as number) & 0x80 || serial[0] === 0)
    throw new RangeError("a serial is 16 bytes, positive, without a leading zero byte");
  if (!isCanonicalP256Spki(spkiDer))
    throw new RangeError("the certified key must be an uncompressed P-256 SubjectPublicKeyInfo");
  if (!(input.notBefore.getTime() < input.notAfter.getTime()))
    throw new RangeError("notBefore must be before notAfter");
  const extensions = derSequence(
    ...input.extensionsDer,
    subjectKeyIdExtension(p256KeyIdentifier(spkiDer)),
    authorityKeyIdExtension(input.authorityKeyId),
  );
  return derSequence(
    VERSION_3,
    derUnsignedInteger(serial),
    ECDSA_SHA256_ALGORITHM,
    input.issuerDer,
    derSequence(derTime(input.notBefore), derTime(input.notAfter)),
    input.subjectDer,
    spkiDer,
    der(0xa3, extensions),
  );
}

/** Signs a TBSCertificate with the CA's P-256 key (ECDSA-SHA256) and returns the Certificate DER. */
export function signCertificate(tbsDer: Uint8Array, caPrivateKey: KeyObject): Buffer {
  const signature = sign("sha256", tbsDer, { key: caPrivateKey, dsaEncoding: "der" });
  return derSequence(tbsDer, ECDSA_SHA256_ALGORITHM, signatureBitString(signature));
}

/** PEM text of a certificate, 64 characters a line, LF, with a final newline. */
export function certificatePem(certDer: Uint8Array): string {
  const base64 = Buffer.from(certDer.buffer, certDer.byteOffset, certDer.byteLength).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/**
 * The subject Name DER of a certificate, exactly as encoded in it (a leaf's issuer must match its CA's
 * subject). Throws RangeError when the DER is not a certificate.
 */
export function certificateSubjectDer(certDer: Uint8Array): Buffer {
  const fail = (): never => {
    throw new RangeError("not an X.509 certificate");
  };
  const outer = readDerElement(certDer, 0) ?? fail();
  if (outer.tag !== DER_SEQUENCE || outer.end !== certDer.length) fail();
  const [tbs] = readDerChildren(certDer, outer, [DER_SEQUENCE, DER_SEQUENCE, 0x03]) ?? fail();
  const fields = listDerChildren(certDer, tbs as DerElement, 10) ?? fail();
  // [0] version is optional (absent for v1); serial, signature, issuer and validity come before the subject.
  const subject = fields[fields[0]?.tag === 0xa0 ? 5 : 4] ?? fail();
  if (subject.tag !== DER_SEQUENCE) fail();
  return Buffer.from(derBytes(certDer, subject));
}
