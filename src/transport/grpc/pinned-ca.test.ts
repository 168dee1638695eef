import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { before, test } from "node:test";
import type { PeerCertificate } from "node:tls";
import { issueLeaf } from "../../../test/helpers/pki.js";
import { systemClock } from "../../common/clock.js";
import { systemRandom } from "../../common/random.js";
import { CertificateAuthority } from "../../identity/ca.js";
import { TransportError } from "../errors.js";
import { PinnedCa } from "./pinned-ca.js";

/**
 * A client's pinned CA is parsed once per input and remembers the server leaves it verified; a
 * remembered leaf is still refused outside its validity, and nothing is remembered across CAs.
 */

let ca: CertificateAuthority;
let other: CertificateAuthority;
before(async () => {
  ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  other = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
});

/** What Node hands checkServerIdentity, as far as PinnedCa reads it. */
function peer(pem: string): { certificate: PeerCertificate; notBefore: number; notAfter: number } {
  const x509 = new X509Certificate(pem);
  const certificate = {
    raw: x509.raw,
    valid_from: x509.validFrom,
    valid_to: x509.validTo,
  } as PeerCertificate;
  return { certificate, notBefore: Date.parse(x509.validFrom), notAfter: Date.parse(x509.validTo) };
}

test("the same input gives the same parsed CA; PEM and DER give the same certificate", () => {
  const a = PinnedCa.of(ca.certPem);
  assert.equal(PinnedCa.of(ca.certPem), a);
  const fromDer = PinnedCa.of(ca.certDer);
  assert.equal(PinnedCa.of(new Uint8Array(ca.certDer)), fromDer);
  assert.deepEqual(fromDer.der, a.der);
  assert.equal(fromDer.pem, a.pem);
  assert.throws(
    () => PinnedCa.of("not a certificate"),
    (err: unknown) => err instanceof TransportError && err.code === "invalid_config",
  );
});

test("a remembered server leaf is accepted only inside its validity", async () => {
  const pinned = PinnedCa.of(ca.certPem);
  const server = peer((await issueLeaf(ca, "server")).certPem);
  const now = Date.now();
  assert.deepEqual(pinned.verifyServer(server.certificate, now), { ok: true });
  assert.deepEqual(pinned.verifyServer(server.certificate, now), { ok: true }, "from memory");
  const late = pinned.verifyServer(server.certificate, server.notAfter + 1);
  assert.equal(!late.ok && late.reason, "expired");
  const early = pinned.verifyServer(server.certificate, server.notBefore - 1);
  assert.equal(!early.ok && early.reason, "not_yet_valid");
  assert.deepEqual(pinned.verifyServer(server.certificate, now), { ok: true });
});

test("a leaf of another CA, or of the wrong purpose, is refused every time", async () => {
  const pinned = PinnedCa.of(ca.certPem);
  const foreign = peer((await issueLeaf(other, "server")).certPem);
  PinnedCa.of(other.certPem).verifyServer(foreign.certificate, Date.now()); // remembered under `other`
  for (let i = 0; i < 2; i++) {
    const result = pinned.verifyServer(foreign.certificate, Date.now());
    assert.equal(!result.ok && result.reason, "not_issued_by_ca");
  }
  const client = peer((await issueLeaf(ca, "client")).certPem);
  for (let i = 0; i < 2; i++) {
    const result = pinned.verifyServer(client.certificate, Date.now());
    assert.equal(!result.ok && result.reason, "wrong_purpose");
  }
});
