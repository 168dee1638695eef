import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  webcrypto,
  X509Certificate,
} from "node:crypto";
import { inspect } from "node:util";
import { type Clock, systemClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { type Random, systemRandom } from "../common/random.js";
import { Secret } from "../common/redaction.js";
import { certificateFingerprint, spkiFingerprint } from "../crypto/fingerprint.js";
import {
  caCommonName,
  caExtensions,
  clientProfile,
  keyIdentifier,
  type LeafProfile,
  type ServerNames,
  serverProfile,
} from "./certificate-profiles.js";
import {
  certificatePem,
  certificateSubjectDer,
  leafTbsCertificate,
  signCertificate,
} from "./certificate-template.js";
import { isP256Key, parseAndVerifyCsr } from "./csr.js";
import { IdentityError } from "./errors.js";
import {
  CRL_PEM_LABEL,
  type CryptoKey,
  type CryptoKeyPair,
  ECDSA_SHA256,
  P256_KEY_PARAMS,
  x509,
} from "./x509-setup.js";

/**
 * The gateway's private certificate authority (DESIGN section 4): an ECDSA P-256 self-signed CA that
 * issues short-lived server and client certificates, only from CSRs, and signs CRLs. It never sees a
 * device's private key. Time and serial numbers come from the injected Clock and Random.
 */

export interface IssuedCertificate {
  pem: string;
  der: Buffer;
  /** Lowercase hex SHA-256 of `der`. */
  fingerprint: string;
  /** Lowercase hex of the 16-byte serial number. */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  /** Lowercase hex SHA-256 of the certified public key's SPKI DER. */
  subjectPublicKeyFingerprint: string;
}

/** What the secret store keeps: the certificate, and the PKCS#8 PEM private key. */
export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export interface CaOptions {
  clock: Clock;
  random: Random;
}

export interface ServerCertificateOptions extends ServerNames {
  lifetimeMs?: number;
}

export interface ClientCertificateOptions {
  deviceId: string;
  /** Default 24 h; allowed 10 min to 30 days. */
  lifetimeMs?: number;
}

export interface CrlEntry {
  serialHex: string;
  revokedAt: Date;
}

const SERIAL_BYTES = 16;
const SERIAL_HEX = /^[0-9a-f]{1,40}$/;
const CRL_NUMBER_OID = "2.5.29.20";
/** Largest PEM text accepted for the CA certificate or key when loading. */
const MAX_PEM_CHARS = limits.maxCertificateBytes * 2;

export class CertificateAuthority {
  readonly #cert: x509.X509Certificate;
  readonly #privateKey: KeyObject;
  readonly #signingKey: CryptoKey;
  readonly #authorityKeyId: x509.AuthorityKeyIdentifierExtension;
  readonly #authorityKeyIdBytes: Buffer;
  /** The CA's subject Name DER as encoded in its certificate: every leaf's issuer. */
  readonly #issuerDer: Buffer;
  readonly #clock: Clock;
  readonly #random: Random;
  #lastCrlNumber = 0n;

  readonly certPem: string;
  readonly certDer: Buffer;
  /** Lowercase hex SHA-256 of the CA certificate DER. */
  readonly fingerprint: string;
  /** Lowercase hex SHA-256 of the CA public key's SPKI DER (the pin in QR codes, the verifier identity). */
  readonly spkiFingerprint: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;

  private constructor(
    cert: x509.X509Certificate,
    privateKey: KeyObject,
    signingKey: CryptoKey,
    subjectKeyIdHex: string,
    options: CaOptions,
  ) {
    this.#cert = cert;
    this.#privateKey = privateKey;
    this.#signingKey = signingKey;
    // The AKI of every leaf is the CA's SKI: computed once here, not per certificate.
    this.#authorityKeyId = new x509.AuthorityKeyIdentifierExtension(subjectKeyIdHex);
    this.#authorityKeyIdBytes = Buffer.from(subjectKeyIdHex, "hex");
    this.#clock = options.clock;
    this.#random = options.random;
    this.certDer = Buffer.from(cert.rawData);
    this.#issuerDer = certificateSubjectDer(this.certDer);
    this.certPem = withFinalNewline(cert.toString("pem"));
    this.fingerprint = certificateFingerprint(this.certDer);
    this.spkiFingerprint = spkiFingerprint(createPublicKey(privateKey));
    this.subject = cert.subject;
    this.notBefore = cert.notBefore;
    this.notAfter = cert.notAfter;
  }

  /** Makes a new CA: fresh P-256 key, self-signed, valid 10 years from now (backdated for clock skew). */
  static async create(options: CaOptions): Promise<CertificateAuthority> {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const spkiDer = publicKey.export({ type: "spki", format: "der" });
    const keys = {
      privateKey: await importSigningKey(privateKey),
      publicKey: await webcrypto.subtle.importKey("spki", spkiDer, P256_KEY_PARAMS, true, ["verify"]),
    } as CryptoKeyPair;
    const now = options.clock.now();
    const subjectKeyId = keyIdentifier(spkiDer);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerialHex(options.random),
      name: [{ CN: [caCommonName(spkiFingerprint(publicKey))] }],
      notBefore: new Date(now - limits.certificateBackdateMs),
      notAfter: new Date(now + limits.caLifetimeMs),
      keys,
      signingAlgorithm: ECDSA_SHA256,
      extensions: caExtensions(subjectKeyId),
    });
    return new CertificateAuthority(cert, privateKey, keys.privateKey, subjectKeyId, options);
  }

  /**
   * Rebuilds a CA from stored material. The key must be a P-256 PKCS#8 key that matches the certificate
   * (`ca_mismatch` otherwise), and the certificate must be a self-signed CA certificate.
   */
  static async load(material: CaMaterial, options: Partial<CaOptions> = {}): Promise<CertificateAuthority> {
    const { certPem, keyPem } = material ?? {};
    if (typeof certPem !== "string" || certPem.length > MAX_PEM_CHARS)
      throw new IdentityError(
        "invalid_certificate",
        "the CA certificate must be a PEM text of reasonable size",
      );
    if (typeof keyPem !== "string" || keyPem.length > MAX_PEM_CHARS)
      throw new IdentityError("invalid_key", "the CA key must be a PEM text of reasonable size");

    let nodeCert: X509Certificate;
    let cert: x509.X509Certificate;
    try {
      nodeCert = new X509Certificate(certPem);
      cert = new x509.X509Certificate(new Uint8Array(nodeCert.raw).buffer);
    } catch (err) {
      throw new IdentityError("invalid_certificate", "the CA certificate could not be parsed", {
        cause: err,
      });
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: keyPem, format: "pem" });
    } catch (err) {
      throw new IdentityError("invalid_key", "the CA private key could not be read (expected PKCS#8 PEM)", {
        cause: err,
      });
    }
    if (!isP256Key(privateKey)) throw new IdentityError("unsupported_key", "the CA key must be ECDSA P-256");
    if (!nodeCert.checkPrivateKey(privateKey))
      throw new IdentityError("ca_mismatch", "the CA private key does not belong to the CA certificate");
    if (!nodeCert.ca)
      throw new IdentityError("invalid_certificate", "the certificate is not a CA certificate");
    if (!nodeCert.checkIssued(nodeCert) || !nodeCert.verify(nodeCert.publicKey))
      throw new IdentityError("invalid_certificate", "the CA certificate is not self-signed");

    const spkiDer = nodeCert.publicKey.export({ type: "spki", format: "der" });
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const subjectKeyId = ski?.keyId ?? keyIdentifier(spkiDer);
    return new CertificateAuthority(cert, privateKey, await importSigningKey(privateKey), subjectKeyId, {
      clock: options.clock ?? systemClock,
      random: options.random ?? systemRandom,
    });
  }

  /** The material to persist. The key is wrapped so that logging the result never shows it. */
  exportMaterial(): { certPem: string; keyPem: Secret<string> } {
    return {
      certPem: this.certPem,
      keyPem: new Secret(this.#privateKey.export({ type: "pkcs8", format: "pem" }) as string),
    };
  }

  /** The CA's public key. */
  get publicKey(): KeyObject {
    return createPublicKey(this.#privateKey);
  }

  /** The gateway's own server certificate for a key it made (24 h by default). */
  async issueServerCertificate(
    csrDer: Uint8Array,
    options: ServerCertificateOptions = {},
  ): Promise<IssuedCertificate> {
    const profile = serverProfile({ dnsNames: options.dnsNames, ipAddresses: options.ipAddresses });
    return this.#issue(csrDer, profile, lifetime(options.lifetimeMs, limits.serverCertificateLifetimeMs));
  }

  /** A device's client certificate for the key in its CSR (24 h by default, 10 min to 30 days). */
  async issueClientCertificate(
    csrDer: Uint8Array,
    options: ClientCertificateOptions,
  ): Promise<IssuedCertificate> {
    const profile = clientProfile(options?.deviceId);
    return this.#issue(
      csrDer,
      profile,
      lifetime(options.lifetimeMs, limits.clientCertificateDefaultLifetimeMs),
    );
  }

  /** A CRL listing `entries`, valid until `nextUpdate`, as PEM labelled `X509 CRL`. */
  async issueCrl(entries: readonly CrlEntry[], nextUpdate: Date): Promise<string> {
    const now = this.#clock.now();
    if (!Array.isArray(entries)) throw new IdentityError("invalid_certificate", "CRL entries must be a list");
    if (!(nextUpdate instanceof Date) || !(nextUpdate.getTime() > now))
      throw new IdentityError("invalid_lifetime", "a CRL's nextUpdate must be a date in the future");
    const crlEntries = entries.map((entry) => {
      const serial = typeof entry?.serialHex === "string" ? entry.serialHex.toLowerCase() : "";
      if (!SERIAL_HEX.test(serial))
        throw new IdentityError("invalid_certificate", "a revoked serial must be 1 to 40 hex digits");
      if (!(entry.revokedAt instanceof Date) || Number.isNaN(entry.revokedAt.getTime()))
        throw new IdentityError("invalid_certificate", "a revocation date must be a valid date");
      return { serialNumber: serial, revocationDate: entry.revokedAt };
    });
    // CRL numbers must increase (RFC 5280 5.2.3): the issue time in ms, bumped if the clock stood still.
    const crlNumber = BigInt(now) > this.#lastCrlNumber ? BigInt(now) : this.#lastCrlNumber + 1n;
    this.#lastCrlNumber = crlNumber;
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.#cert.subjectName,
      thisUpdate: new Date(now - limits.certificateBackdateMs),
      nextUpdate,
      signingKey: this.#signingKey,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [this.#authorityKeyId, new x509.Extension(CRL_NUMBER_OID, false, derInteger(crlNumber))],
      entries: crlEntries,
    });
    return withFinalNewline(x509.PemConverter.encode(crl.rawData, CRL_PEM_LABEL));
  }

  async #issue(csrDer: Uint8Array, profile: LeafProfile, lifetimeMs: number): Promise<IssuedCertificate> {
    const csr = await parseAndVerifyCsr(csrDer);
    const now = this.#clock.now();
    const notBefore = new Date(now - limits.certificateBackdateMs);
    const notAfter = new Date(now + lifetimeMs);
    if (now < this.notBefore.getTime())
      throw new IdentityError("invalid_lifetime", "the CA certificate is not valid yet (check the clock)");
    if (notAfter.getTime() > this.notAfter.getTime())
      throw new IdentityError("invalid_lifetime", "the certificate would outlive the CA certificate");
    const serialHex = randomSerialHex(this.#random);
    // Built directly in DER and signed by node:crypto (certificate-template.ts): byte for byte what
    // @peculiar/x509 produced for the same inputs, at a fraction of the cost.
    const tbs = leafTbsCertificate({
      serial: Buffer.from(serialHex, "hex"),
      issuerDer: this.#issuerDer,
      notBefore,
      notAfter,
      subjectDer: profile.subjectDer,
      spkiDer: csr.spkiDer,
      extensionsDer: profile.extensionsDer,
      authorityKeyId: this.#authorityKeyIdBytes,
    });
    const der = signCertificate(tbs, this.#privateKey);
    return {
      pem: certificatePem(der),
      der,
      fingerprint: certificateFingerprint(der),
      serialHex,
      // As encoded (whole seconds), so they match what verifiers see.
      notBefore: wholeSeconds(notBefore),
      notAfter: wholeSeconds(notAfter),
      subjectPublicKeyFingerprint: csr.keyFingerprint,
    };
  }

  toJSON(): { subject: string; fingerprint: string; notBefore: string; notAfter: string } {
    return {
      subject: this.subject,
      fingerprint: this.fingerprint,
      notBefore: this.notBefore.toISOString(),
      notAfter: this.notAfter.toISOString(),
    };
  }

  [inspect.custom](): string {
    return `CertificateAuthority { subject: '${this.subject}', fingerprint: '${this.fingerprint}', notAfter: ${this.notAfter.toISOString()} }`;
  }
}

/** Certificate times are encoded to the second: the milliseconds are dropped. */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** PEM text ends with a newline, so that certificates can be concatenated into a chain as they are. */
export function withFinalNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : `${pem}\n`;
}

async function importSigningKey(privateKey: KeyObject): Promise<CryptoKey> {
  const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
  return webcrypto.subtle.importKey("pkcs8", pkcs8, P256_KEY_PARAMS, false, ["sign"]);
}

/** Client and server lifetimes: a whole number of ms from 3 minutes to 30 days. */
function lifetime(requested: number | undefined, fallback: number): number {
  if (requested === undefined) return fallback;
  if (
    !Number.isSafeInteger(requested) ||
    requested < limits.clientCertificateMinLifetimeMs ||
    requested > limits.clientCertificateMaxLifetimeMs
  )
    throw new IdentityError(
      "invalid_lifetime",
      `a certificate lifetime must be between ${limits.clientCertificateMinLifetimeMs / 60_000} minutes and ${
        limits.clientCertificateMaxLifetimeMs / 86_400_000
      } days`,
    );
  return requested;
}

/**
 * 16 random bytes as a positive DER INTEGER of exactly 16 bytes: the top bit cleared (no sign byte
 * needed) and the first byte non-zero (so no byte is dropped as a leading zero). 126+ bits of entropy.
 */
export function randomSerialHex(random: Random): string {
  const bytes = random.bytes(SERIAL_BYTES);
  bytes[0] = (bytes[0] as number) & 0x7f || 0x01;
  return bytes.toString("hex");
}

/** DER encoding of a non-negative INTEGER. */
function derInteger(value: bigint): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let content = Buffer.from(hex, "hex");
  if ((content[0] as number) & 0x80) content = Buffer.concat([Buffer.of(0), content]);
  return Buffer.concat([Buffer.of(0x02, content.length), content]);
}
