import { X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import { certificateFingerprint } from "../../crypto/fingerprint.js";
import { type ChainResult, verifyIssuedBy } from "../../identity/verify-chain.js";
import { TransportError } from "../errors.js";

/**
 * A NodePortClient's pinned CA, and the server certificates it has already found issued by it.
 *
 * Why: parsing a certificate costs Node about as much as the rest of a connection's certificate work,
 * and every new client used to parse the CA, then parse it again with the server's leaf and verify the
 * leaf's signature (verifyIssuedBy) on every connection. Both results depend only on the bytes, so they
 * are kept: the CA per distinct input, and per CA the leaves that passed, by SHA-256 of their DER. Time
 * is never kept: a remembered leaf is accepted only while now lies within both its and the CA's
 * validity, exactly the window verifyIssuedBy checks; outside it the full check runs again (and fails
 * with its reason). Failures are never remembered.
 */
export class PinnedCa {
  readonly pem: string;
  readonly der: Buffer;
  readonly #notBefore: number;
  readonly #notAfter: number;
  /** Leaves that passed verifyIssuedBy against this CA: fingerprint -> their own validity window. */
  readonly #verified = new Map<string, { notBefore: number; notAfter: number }>();

  /** The CA for `input` (PEM or DER), parsed once per distinct input; throws `invalid_config`. */
  static of(input: string | Uint8Array): PinnedCa {
    const key = typeof input === "string" ? input : Buffer.from(input).toString("base64");
    let ca = parsed.get(key);
    if (!ca) {
      ca = new PinnedCa(input);
      if (parsed.size >= CAS_KEPT) parsed.delete(parsed.keys().next().value as string);
      parsed.set(key, ca);
    }
    return ca;
  }

  private constructor(input: string | Uint8Array) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(input);
    } catch (err) {
      throw new TransportError("invalid_config", "the pinned CA is not a certificate (PEM or DER)", {
        cause: err,
      });
    }
    this.pem = cert.toString();
    this.der = cert.raw;
    this.#notBefore = Date.parse(cert.validFrom);
    this.#notAfter = Date.parse(cert.validTo);
  }

  /** verifyIssuedBy(leaf, this CA, at `now`, for a server), answered from memory for a known leaf. */
  verifyServer(certificate: PeerCertificate, now: number): ChainResult {
    const fingerprint = certificateFingerprint(certificate.raw);
    const known = this.#verified.get(fingerprint);
    if (known && inside(now, known.notBefore, known.notAfter) && inside(now, this.#notBefore, this.#notAfter))
      return { ok: true };
    const result = verifyIssuedBy(certificate.raw, this.der, now, { purpose: "server" });
    if (result.ok && !known) {
      if (this.#verified.size >= LEAVES_KEPT)
        this.#verified.delete(this.#verified.keys().next().value as string);
      // The same dates verifyIssuedBy read: both come from the DER through OpenSSL's formatting.
      this.#verified.set(fingerprint, {
        notBefore: Date.parse(certificate.valid_from),
        notAfter: Date.parse(certificate.valid_to),
      });
    }
    return result;
  }
}

const inside = (now: number, from: number, to: number) => now >= from && now <= to;

/** Distinct pinned CAs kept (a process talks to one gateway, a test to a few). */
const CAS_KEPT = 16;
/** Server leaves kept per CA (the gateway's current certificate and a few renewed ones). */
const LEAVES_KEPT = 32;
const parsed = new Map<string, PinnedCa>();
