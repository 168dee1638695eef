import { X509Certificate } from "node:crypto";
import { limits } from "../common/limits.js";

/**
 * Checks that a leaf certificate was issued by our CA and is valid at a given time, with Node's own
 * X.509 code: issuer/subject and key-identifier match (`checkIssued`), the signature (`verify`), both
 * validity windows, that the leaf is not a CA, and optionally its extended key usage. Used by devices to
 * check the server they reached, and by QUIC's verifyCallback, which replaces the native chain check.
 */

export type ChainFailure =
  | "malformed"
  | "ca_not_a_ca"
  | "not_issued_by_ca"
  | "bad_signature"
  | "not_yet_valid"
  | "expired"
  | "ca_not_valid"
  | "leaf_is_ca"
  | "wrong_purpose";

export type ChainResult = { ok: true } | { ok: false; reason: ChainFailure; detail: string };

export type CertificatePurpose = "server" | "client";

const EKU_OID: Record<CertificatePurpose, string> = {
  server: "1.3.6.1.5.5.7.3.1",
  client: "1.3.6.1.5.5.7.3.2",
};

export function verifyIssuedBy(
  leafDer: Uint8Array,
  caCertDer: Uint8Array,
  atMs: number,
  options: { purpose?: CertificatePurpose } = {},
): ChainResult {
  const fail = (reason: ChainFailure, detail: string): ChainResult => ({ ok: false, reason, detail });
  const leaf = parse(leafDer);
  const ca = parse(caCertDer);
  if (leaf === undefined) return fail("malformed", "the certificate could not be parsed");
  if (ca === undefined) return fail("malformed", "the CA certificate could not be parsed");
  if (!Number.isFinite(atMs)) return fail("malformed", "the verification time is not a number");

  if (!ca.ca) return fail("ca_not_a_ca", "the trusted certificate is not a CA certificate");
  if (!leaf.checkIssued(ca)) return fail("not_issued_by_ca", "the certificate was not issued by this CA");
  if (!leaf.verify(ca.publicKey)) return fail("bad_signature", "the certificate's signature does not verify");
  if (leaf.ca) return fail("leaf_is_ca", "the certificate is a CA certificate, not a leaf");

  const at = new Date(atMs).toISOString();
  const from = Date.parse(leaf.validFrom);
  const to = Date.parse(leaf.validTo);
  if (!(atMs >= from))
    return fail("not_yet_valid", `the certificate is not valid before ${leaf.validFrom} (now ${at})`);
  if (!(atMs <= to)) return fail("expired", `the certificate expired at ${leaf.validTo} (now ${at})`);
  if (!(atMs >= Date.parse(ca.validFrom) && atMs <= Date.parse(ca.validTo)))
    return fail("ca_not_valid", `the CA certificate is not valid at ${at}`);

  if (options.purpose !== undefined) {
    const usages = leaf.keyUsage ?? [];
    if (!usages.includes(EKU_OID[options.purpose]))
      return fail(
        "wrong_purpose",
        `the certificate is not a TLS ${options.purpose} certificate (extended key usage)`,
      );
  }
  return { ok: true };
}

function parse(der: Uint8Array): X509Certificate | undefined {
  if (!(der instanceof Uint8Array) || der.length === 0 || der.length > limits.maxCertificateBytes)
    return undefined;
  try {
    return new X509Certificate(der);
  } catch {
    return undefined;
  }
}
