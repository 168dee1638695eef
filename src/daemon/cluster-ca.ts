import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { writeFileAtomic } from "../common/atomic-file.js";
import type { Clock } from "../common/clock.js";
import type { Random } from "../common/random.js";
import { openEnvelope, sealEnvelope } from "../crypto/envelope.js";
import { defaultScryptParams, deriveKeyFromPassphrase } from "../crypto/passphrase-key.js";
import { CertificateAuthority } from "../identity/ca.js";
import { IdentityError } from "../identity/errors.js";
import type { MetaRepository } from "../store/ports.js";
import type { CaBootstrapResult } from "./ca-bootstrap.js";

/**
 * The CA of a cluster of gateways lives in their shared database: the certificate in the clear, the
 * private key sealed (ChaCha20-Poly1305) under a key-encryption key every gateway derives from the same
 * passphrase with scrypt; salt and cost are stored beside it. The first gateway on an empty database
 * creates it; a gateway that loses the race to create it loads the winner's.
 */

const META_CLUSTER_CA = "cluster.ca";
const FORMAT = { magic: "PCA1", version: 1 } as const;
const AAD = Buffer.from("palyra-cluster-ca-key-v1");
const MIN_PASSPHRASE = 12;

const sealedSchema = z
  .object({
    v: z.literal(1),
    cert_pem: z.string().min(1).max(16_384),
    kdf: z.object({
      alg: z.literal("scrypt"),
      salt: z.string().regex(/^[A-Za-z0-9_-]{22,64}$/),
      N: z.number().int().min(1024).max(1_048_576),
      r: z.number().int().min(1).max(32),
      p: z.number().int().min(1).max(16),
    }),
    sealed_key: z.string().min(1).max(16_384),
  })
  .strict();

export async function loadOrCreateClusterCa(
  meta: MetaRepository,
  passphrase: string | undefined,
  clock: Clock,
  random: Random,
  caCertPath: string,
): Promise<CaBootstrapResult> {
  if (passphrase === undefined || passphrase.length < MIN_PASSPHRASE)
    throw new IdentityError(
      "secret_store_locked",
      `a gateway on a shared database needs PALYRA_CA_PASSPHRASE (at least ${MIN_PASSPHRASE} characters), ` +
        "the same on every gateway: the cluster's CA key is sealed with it",
    );
  let stored = await meta.get(META_CLUSTER_CA);
  let created = false;
  if (stored === undefined) {
    const ca = await CertificateAuthority.create({ clock, random });
    const mine = await seal(ca, passphrase, random);
    stored = await meta.setIfAbsent(META_CLUSTER_CA, mine);
    created = stored === mine;
  }
  const ca = await unseal(stored, passphrase, clock, random);
  writeFileAtomic(caCertPath, ca.certPem, 0o644);
  return { ca, created };
}

async function seal(ca: CertificateAuthority, passphrase: string, random: Random): Promise<string> {
  const params = defaultScryptParams();
  const salt = random.bytes(16).toString("base64url");
  const kek = await deriveKeyFromPassphrase(passphrase, salt, params);
  const material = ca.exportMaterial();
  try {
    const sealed = sealEnvelope(FORMAT, kek, Buffer.from(material.keyPem.expose(), "utf8"), AAD, random);
    return JSON.stringify({
      v: 1,
      cert_pem: material.certPem,
      kdf: { alg: "scrypt", salt, ...params },
      sealed_key: sealed.toString("base64"),
    });
  } finally {
    kek.fill(0);
  }
}

async function unseal(
  stored: string,
  passphrase: string,
  clock: Clock,
  random: Random,
): Promise<CertificateAuthority> {
  let record: z.infer<typeof sealedSchema>;
  try {
    record = sealedSchema.parse(JSON.parse(stored));
  } catch (err) {
    throw new IdentityError("secret_store_corrupt", "the cluster CA record in the database is damaged", {
      cause: err,
    });
  }
  const { salt, N, r, p } = record.kdf;
  const kek = await deriveKeyFromPassphrase(passphrase, salt, { N, r, p });
  let keyPem: string;
  try {
    keyPem = openEnvelope(FORMAT, kek, Buffer.from(record.sealed_key, "base64"), AAD).toString("utf8");
  } catch (err) {
    const fingerprint = new X509Certificate(record.cert_pem).fingerprint256.replaceAll(":", "").toLowerCase();
    throw new IdentityError(
      "secret_store_locked",
      `PALYRA_CA_PASSPHRASE does not open the cluster's CA (${fingerprint.slice(0, 16)}…): ` +
        "use the passphrase the first gateway was started with",
      { cause: err },
    );
  } finally {
    kek.fill(0);
  }
  return CertificateAuthority.load({ certPem: record.cert_pem, keyPem }, { clock, random });
}
