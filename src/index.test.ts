import assert from "node:assert/strict";
import { test } from "node:test";
import * as palyra from "./index.js";

test("the public API pairs a device identity with a CA-issued client certificate end to end", async () => {
  const clock = new palyra.ManualClock(Date.now());
  const ca = await palyra.CertificateAuthority.create({ clock, random: palyra.systemRandom });
  const store = new palyra.InMemorySecretStore();
  const identity = await palyra.DeviceIdentity.loadOrCreate(store, clock, palyra.systemRandom);
  const again = await palyra.DeviceIdentity.loadOrCreate(store, clock, palyra.systemRandom);
  assert.equal(again.deviceId, identity.deviceId);
  assert.ok(palyra.isCanonicalId(identity.deviceId));

  const { privateKey, publicKey } = palyra.generateP256KeyPair();
  const csr = await palyra.createCsr(privateKey, publicKey);
  const issued = await ca.issueClientCertificate(csr, { deviceId: identity.deviceId });
  assert.deepEqual(palyra.verifyIssuedBy(issued.der, ca.certDer, clock.now(), { purpose: "client" }), {
    ok: true,
  });

  const gateway = palyra.openGatewayStore(":memory:", clock, palyra.systemRandom);
  const registry = new palyra.DeviceRegistry(gateway.devices, clock);
  await registry.recordPairing({
    deviceId: identity.deviceId,
    clientKind: "cli",
    deviceName: "laptop",
    platform: "linux",
    identityPublicKey: identity.publicKey,
    certificate: { fingerprint: issued.fingerprint, expiresAt: issued.notAfter.getTime() },
  });
  const decision = await registry.authorizePeer(issued.der);
  assert.equal(decision.ok && decision.device.deviceId, identity.deviceId);

  const message = Buffer.from("status poll");
  assert.equal(palyra.verifyIdentitySignature(identity.publicKey, message, identity.sign(message)), true);
  assert.equal(
    palyra.verifyIdentitySignature(identity.publicKey, Buffer.from("other"), identity.sign(message)),
    false,
  );
  gateway.close();
});
