import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { SeededRandom } from "../common/random.js";
import { CertificateAuthority } from "../identity/ca.js";
import { ServerCertificateManager, type ServerIdentity } from "./server-certificate.js";

const HOUR = 3_600_000;

test("the server certificate is due for renewal at 2/3 of its life and renewal notifies listeners", async () => {
  const clock = new ManualClock(Date.now());
  const random = new SeededRandom("server-cert");
  const ca = await CertificateAuthority.create({ clock, random });
  const manager = new ServerCertificateManager(ca, clock, { dnsNames: ["gw.example"], ipAddresses: [] });
  const first = await manager.issue();

  const leaf = new X509Certificate(first.certificate.pem);
  assert.ok(leaf.checkIssued(new X509Certificate(ca.certPem)));
  assert.match(leaf.subjectAltName ?? "", /DNS:gw\.example/);
  // The chain PEM holds leaf then CA, the form tls.createSecureContext wants.
  assert.equal(first.certChainPem.match(/BEGIN CERTIFICATE/g)?.length, 2);

  // notBefore is backdated 5 min and notAfter is 24 h from now; renewal is due at 2/3 of that span.
  const { notBefore, notAfter } = first.certificate;
  assert.equal(notAfter.getTime() - clock.now(), 24 * HOUR - (clock.now() % 1000));
  const dueIn = manager.msUntilRenewal();
  const life = notAfter.getTime() - notBefore.getTime();
  assert.equal(dueIn, notBefore.getTime() + (life * 2) / 3 - clock.now());
  clock.advance(dueIn);
  assert.equal(manager.msUntilRenewal(), 0);

  const renewed: ServerIdentity[] = [];
  manager.onRenew((id) => renewed.push(id));
  const second = await manager.issue();
  assert.equal(renewed.length, 1);
  assert.notEqual(second.certificate.fingerprint, first.certificate.fingerprint);
  assert.notEqual(second.keyPem, first.keyPem);
  assert.equal(manager.current(), second);
  assert.ok(manager.msUntilRenewal() > 15 * HOUR);
});
