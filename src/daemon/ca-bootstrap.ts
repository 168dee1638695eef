import { X509Certificate } from "node:crypto";
import { writeFileAtomic } from "../common/atomic-file.js";
import type { Clock } from "../common/clock.js";
import type { Random } from "../common/random.js";
import { CertificateAuthority } from "../identity/ca.js";
import { IdentityError } from "../identity/errors.js";
import type { SecretStore } from "../identity/secret-store.js";
import type { MetaRepository } from "../store/ports.js";

const CA_CERT_KEY = "ca/certificate";
const CA_KEY_KEY = "ca/private-key";
const META_CA_FINGERPRINT = "ca.fingerprint";

export interface CaBootstrapResult {
  ca: CertificateAuthority;
  created: boolean;
}

/**
 * Loads the gateway CA, or creates it on first boot. The database remembers which CA it belongs to;
 * if that CA's key is gone from the secret store the daemon refuses to start rather than mint a new
 * CA, which would silently orphan every paired device.
 */
export async function loadOrCreateCa(
  secrets: SecretStore,
  meta: MetaRepository,
  clock: Clock,
  random: Random,
  caCertPath: string,
): Promise<CaBootstrapResult> {
  const recorded = await meta.get(META_CA_FINGERPRINT);
  const [certBytes, keyBytes] = await Promise.all([secrets.read(CA_CERT_KEY), secrets.read(CA_KEY_KEY)]);

  if (certBytes && keyBytes) {
    const ca = await CertificateAuthority.load(
      {
        certPem: certBytes.toString("utf8"),
        keyPem: keyBytes.toString("utf8"),
      },
      { clock, random },
    );
    if (recorded && recorded !== ca.fingerprint)
      throw new IdentityError(
        "ca_mismatch",
        `the secret store holds CA ${ca.fingerprint} but the database belongs to CA ${recorded}; refusing to start`,
      );
    if (!recorded) await meta.set(META_CA_FINGERPRINT, ca.fingerprint);
    writeFileAtomic(caCertPath, ca.certPem, 0o644);
    return { ca, created: false };
  }

  if (recorded || certBytes || keyBytes)
    throw new IdentityError(
      "ca_missing",
      `the CA key is missing from the secret store, but ${recorded ? `the database records CA ${recorded}` : "a CA certificate is stored"}; ` +
        "refusing to start, because a new CA would cut off every paired device. Restore the secret store, " +
        "or move the state root aside to start over.",
    );

  const ca = await CertificateAuthority.create({ clock, random });
  const material = ca.exportMaterial();
  // Key first, then certificate, then the database record: a crash in between leaves a CA that the
  // next boot either loads whole or reports as incomplete, never one it silently replaces.
  await secrets.write(CA_KEY_KEY, Buffer.from(material.keyPem.expose(), "utf8"));
  await secrets.write(CA_CERT_KEY, Buffer.from(material.certPem, "utf8"));
  await meta.set(META_CA_FINGERPRINT, ca.fingerprint);
  writeFileAtomic(caCertPath, ca.certPem, 0o644);
  return { ca, created: true };
}

/** Facts about a CA certificate for `palyra ca show`. */
export function describeCaCertificate(pem: string) {
  const cert = new X509Certificate(pem);
  return {
    subject: cert.subject.replace(/\n/g, ", "),
    fingerprint_sha256: cert.fingerprint256.replace(/:/g, "").toLowerCase(),
    not_before: new Date(cert.validFrom).toISOString(),
    not_after: new Date(cert.validTo).toISOString(),
    serial: cert.serialNumber.toLowerCase(),
  };
}
