import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { writeFileAtomic } from "../common/atomic-file.js";
import type { Clock } from "../common/clock.js";
import type { Random } from "../common/random.js";
import { CertificateAuthority } from "../identity/ca.js";
import { IdentityError } from "../identity/errors.js";
import type { MetaRepository } from "../store/ports.js";
import type { CaBootstrapResult } from "./ca-bootstrap.js";
import { openWithPassphrase, sealedSchema, sealWithPassphrase } from "./passphrase-seal.js";

/**
 * The CA of a cluster of gateways lives in their shared database: the certificate in the clear, the
 * private key sealed under the cluster passphrase (passphrase-seal.ts). The first gateway on an empty
 * database creates it; a gateway that loses the race to create it loads the winner's.
 */

const META_CLUSTER_CA = "cluster.ca";
const FORMAT = { magic: "PCA1", version: 1 } as const;
const AAD = Buffer.from("palyra-cluster-ca-key-v1");
export const MIN_CLUSTER_PASSPHRASE = 12;

const recordSchema = z
  .object({ v: z.literal(1), cert_pem: z.string().min(1).max(16_384), key: sealedSchema })
  .strict();

/** The passphrase every gateway of a cluster needs, checked once at start. */
export function requireClusterPassphrase(passphrase: string | undefined): string {
  if (passphrase === undefined || passphrase.length < MIN_CLUSTER_PASSPHRASE)
    throw new IdentityError(
      "secret_store_locked",
      `a gateway on a shared database needs PALYRA_CA_PASSPHRASE (at least ${MIN_CLUSTER_PASSPHRASE} characters), ` +
        "the same on every gateway: the cluster's CA key is sealed with it",
    );
  return passphrase;
}

export async function loadOrCreateClusterCa(
  meta: MetaRepository,
  passphrase: string | undefined,
  clock: Clock,
  random: Random,
  caCertPath: string,
): Promise<CaBootstrapResult> {
  const secret = requireClusterPassphrase(passphrase);
  let stored = await meta.get(META_CLUSTER_CA);
  let created = false;
  if (stored === undefined) {
    const ca = await CertificateAuthority.create({ clock, random });
    const material = ca.exportMaterial();
    const key = await sealWithPassphrase(
      Buffer.from(material.keyPem.expose(), "utf8"),
      secret,
      FORMAT,
      AAD,
      random,
    );
    const mine = JSON.stringify({ v: 1, cert_pem: material.certPem, key });
    stored = await meta.setIfAbsent(META_CLUSTER_CA, mine);
    created = stored === mine;
  }
  const ca = await unseal(stored, secret, clock, random);
  writeFileAtomic(caCertPath, ca.certPem, 0o644);
  return { ca, created };
}

async function unseal(
  stored: string,
  passphrase: string,
  clock: Clock,
  random: Random,
): Promise<CertificateAuthority> {
  let record: z.infer<typeof recordSchema>;
  try {
    record = recordSchema.parse(JSON.parse(stored));
  } catch (err) {
    throw new IdentityError("secret_store_corrupt", "the cluster CA record in the database is damaged", {
      cause: err,
    });
  }
  let keyPem: string;
  try {
    keyPem = (await openWithPassphrase(record.key, passphrase, FORMAT, AAD)).toString("utf8");
  } catch (err) {
    const fingerprint = new X509Certificate(record.cert_pem).fingerprint256.replaceAll(":", "").toLowerCase();
    throw new IdentityError(
      "secret_store_locked",
      `PALYRA_CA_PASSPHRASE does not open the cluster's CA (${fingerprint.slice(0, 16)}…): ` +
        "use the passphrase the first gateway was started with",
      { cause: err },
    );
  }
  return CertificateAuthority.load({ certPem: record.cert_pem, keyPem }, { clock, random });
}
