import assert from "node:assert/strict";
import { before, test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { SeededRandom } from "../common/random.js";
import { openGatewayStore } from "../store/gateway-store.js";
import { CertificateAuthority } from "./ca.js";
import { createCsr, generateP256KeyPair } from "./csr.js";
import { DeviceIdentity } from "./device-identity.js";
import { DeviceRegistry, trustedCertificateOf } from "./device-registry.js";
import { CertificateRotation, certificateDeviceId, renewalDelayMs, renewalMessage } from "./rotation.js";

const MINUTE = 60_000;
const clock = new ManualClock(Date.UTC(2026, 10, 23, 12));
const random = new SeededRandom("rotation");
let ca: CertificateAuthority;

before(async () => {
  ca = await CertificateAuthority.create({ clock, random });
});

async function pairedDevice(lifetimeMs = 3 * MINUTE) {
  const store = openGatewayStore(":memory:", clock, random);
  const registry = new DeviceRegistry(store.devices, clock);
  const identity = DeviceIdentity.generate(clock, random);
  const keys = generateP256KeyPair();
  const issued = await ca.issueClientCertificate(await createCsr(keys.privateKey, keys.publicKey), {
    deviceId: identity.deviceId,
    lifetimeMs,
  });
  await registry.recordPairing({
    deviceId: identity.deviceId,
    clientKind: "node",
    deviceName: "n",
    platform: "linux",
    identityPublicKey: identity.publicKey,
    certificate: trustedCertificateOf(issued.pem),
  });
  const rotation = new CertificateRotation({ ca, registry, clock, clientCertificateLifetimeMs: lifetimeMs });
  return { registry, identity, issued, rotation };
}

async function freshCsr(): Promise<Buffer> {
  const keys = generateP256KeyPair();
  return createCsr(keys.privateKey, keys.publicKey);
}

test("renewal: a CSR signed for by the identity key gets a certificate that becomes current", async () => {
  const { registry, identity, issued, rotation } = await pairedDevice();
  const csr = await freshCsr();
  const result = await rotation.renew(
    identity.deviceId,
    csr,
    identity.sign(renewalMessage(identity.deviceId, csr)),
  );
  assert.equal(result.previousFingerprint, issued.fingerprint);
  assert.equal(certificateDeviceId(result.issued.pem), identity.deviceId);
  assert.equal(result.issued.notAfter.getTime() - clock.now(), 3 * MINUTE);
  const device = await registry.get(identity.deviceId);
  assert.equal(device?.current.fingerprint, result.issued.fingerprint);
  assert.equal(device?.previous?.fingerprint, issued.fingerprint);
  assert.equal((await registry.authorizePeer(issued.der)).ok, true, "the old one is accepted in the overlap");
});

test("renewal refuses a wrong signature, another device's signature, a pairing-style signature and a bad CSR", async () => {
  const { identity, rotation } = await pairedDevice();
  const csr = await freshCsr();
  const other = DeviceIdentity.generate(clock, random);
  const cases: [string, Uint8Array, Uint8Array][] = [
    ["zero signature", csr, Buffer.alloc(64)],
    ["another identity", csr, other.sign(renewalMessage(identity.deviceId, csr))],
    ["signature over the raw CSR", csr, identity.sign(csr)],
    ["signature for another CSR", csr, identity.sign(renewalMessage(identity.deviceId, await freshCsr()))],
    ["signature bound to another device id", csr, identity.sign(renewalMessage(other.deviceId, csr))],
  ];
  for (const [what, der, signature] of cases)
    await assert.rejects(
      rotation.renew(identity.deviceId, der, signature),
      { code: "signature_invalid" },
      what,
    );
  const huge = Buffer.alloc(limits.maxCsrBytes + 1);
  await assert.rejects(rotation.renew(identity.deviceId, huge, Buffer.alloc(64)), { code: "invalid_csr" });
  const garbage = Buffer.from("not a csr");
  await assert.rejects(
    rotation.renew(identity.deviceId, garbage, identity.sign(renewalMessage(identity.deviceId, garbage))),
    { code: "invalid_csr" },
  );
});

test("renewal is refused for a revoked or unknown device", async () => {
  const { registry, identity, rotation } = await pairedDevice();
  await registry.revoke(identity.deviceId, "lost");
  const csr = await freshCsr();
  const signature = identity.sign(renewalMessage(identity.deviceId, csr));
  await assert.rejects(rotation.renew(identity.deviceId, csr, signature), { code: "device_revoked" });
  await assert.rejects(rotation.renew("01JUNKNOWN0000000000000000", csr, signature), {
    code: "device_not_found",
  });
});

test("renewal point: 2/3 of the life counted from issue, jittered within +-10%", async () => {
  const { issued } = await pairedDevice(3 * MINUTE);
  const due = 2 * MINUTE;
  assert.equal(renewalDelayMs(issued.pem, clock.now()), due);
  assert.equal(renewalDelayMs(issued.pem, clock.now() + MINUTE), due - MINUTE);
  assert.equal(renewalDelayMs(issued.pem, clock.now() + 5 * MINUTE), 0, "overdue renews now");
  const seen = new Set<number>();
  const jitter = new SeededRandom("jitter");
  for (let i = 0; i < 200; i++) {
    const delay = renewalDelayMs(issued.pem, clock.now(), jitter);
    assert.ok(delay >= due * 0.9 && delay <= due * 1.1, `${delay} within 10% of ${due}`);
    seen.add(Math.round(delay / 1000));
  }
  assert.ok(seen.size > 10, "the jitter actually spreads renewals");
});
