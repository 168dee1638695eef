import { randomBytes, sign } from "node:crypto";
import { systemClock } from "../src/common/clock.js";
import { systemRandom } from "../src/common/random.js";
import { CertificateAuthority } from "../src/identity/ca.js";
import { createCsr, generateP256KeyPair, parseAndVerifyCsr } from "../src/identity/csr.js";
import { type BenchResult, measure, opsResult } from "./harness.js";

const SUITE = "certificates";
/** Canonical ULID for the client profile. */
const DEVICE_ID = "01JD7Z4Q9V8K3M2N1P0R5S6T7W";

/**
 * Certificate issuance from CSRs (client profile; CSR parse + signature check + build + sign), against
 * the raw ECDSA P-256 signature rate of node:crypto measured in the same run: the ratio shows what the
 * ASN.1 work in JavaScript costs on top of the one signature each certificate needs.
 */
export async function run(): Promise<BenchResult[]> {
  const ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  const csrs: Buffer[] = [];
  for (let i = 0; i < 8; i++) {
    const keys = generateP256KeyPair();
    csrs.push(await createCsr(keys.privateKey, keys.publicKey));
  }
  let next = 0;
  const nextCsr = () => csrs[next++ % csrs.length] as Buffer;

  const issue = await measure(() => ca.issueClientCertificate(nextCsr(), { deviceId: DEVICE_ID }), {
    warmupMs: 500,
    durationMs: 4_000,
  });
  const csrOnly = await measure(() => parseAndVerifyCsr(nextCsr()), { warmupMs: 300, durationMs: 1_500 });

  const { privateKey } = generateP256KeyPair();
  const data = randomBytes(400); // about the size of a leaf's to-be-signed part
  const raw = await measure(() => sign("sha256", data, privateKey), { warmupMs: 300, durationMs: 3_000 });

  return [
    opsResult(SUITE, "client certificates issued from CSRs", issue),
    opsResult(SUITE, "CSR parse + signature check only", csrOnly),
    opsResult(SUITE, "raw ECDSA P-256 signatures (node:crypto sign)", raw),
    {
      suite: SUITE,
      name: "raw signatures per issued certificate",
      value: raw.opsPerSec / issue.opsPerSec,
      unit: "x",
    },
  ];
}
