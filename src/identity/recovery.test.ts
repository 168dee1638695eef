import assert from "node:assert/strict";
import { before, test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { SeededRandom } from "../common/random.js";
import { openGatewayStore } from "../store/gateway-store.js";
import { CertificateAuthority } from "./ca.js";
import { createCsr, generateP256KeyPair } from "./csr.js";
import { DeviceIdentity } from "./device-identity.js";
import { DeviceRegistry, trustedCertificateOf } from "./device-registry.js";
import { CertificateRecovery, recoveryMessage } from "./recovery.js";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const clock = new ManualClock(Date.UTC(2026, 11, 6, 12));
const random = new SeededRandom("recovery");
let ca: CertificateAuthority;

before(async () => {
  ca = await CertificateAuthority.create({ clock, random });
});

async function pairedDevice(windowMs = 30 * DAY) {
  const store = openGatewayStore(":memory:", clock, random);
  const registry = new DeviceRegistry(store.devices, clock);
  const identity = DeviceIdentity.generate(clock, random);
  const keys = generateP256KeyPair();
  const issued = await ca.issueClientCertificate(await createCsr(keys.privateKey, keys.publicKey), {
    deviceId: identity.deviceId,
    lifetimeMs: 3 * MINUTE,
  });
  await registry.recordPairing({
    deviceId: identity.deviceId,
    clientKind: "node",
    deviceName: "n",
    platform: "linux",
    identityPublicKey: identity.publicKey,
    certificate: trustedCertificateOf(issued.pem),
  });
  const recovery = new CertificateRecovery({
    ca,
    registry,
    clock,
    windowMs,
    clientCertificateLifetimeMs: 3 * MINUTE,
  });
  const ask = async (
    overrides: Partial<Parameters<CertificateRecovery["recover"]>[0]> = {},
    signer = identity,
  ) => {
    const keys = generateP256KeyPair();
    const csrDer = await createCsr(keys.privateKey, keys.publicKey);
    const request = {
      deviceId: identity.deviceId,
      csrDer,
      timestampMs: clock.now(),
      heldFingerprint: issued.fingerprint,
      ...overrides,
    };
    const signature = signer.sign(
      recoveryMessage(request.deviceId, request.timestampMs, request.heldFingerprint, request.csrDer),
    );
    return recovery.recover({
      ...request,
      signature,
      ...(overrides.signature ? { signature: overrides.signature } : {}),
    });
  };
  return { store, registry, identity, issued, ask };
}

test("an expired (not revoked) device recovers within the window; the old certificate is refused from then on", async () => {
  const { registry, identity, issued, ask } = await pairedDevice();
  await assert.rejects(ask(), { code: "nothing_to_recover", message: /still valid/ });
  clock.advance(3 * MINUTE + 10 * DAY);
  const recovered = await ask();
  const device = await registry.get(identity.deviceId);
  assert.equal(device?.current.fingerprint, recovered.fingerprint);
  assert.equal(device?.previous, undefined, "no overlap for the replaced certificate");
  const old = await registry.authorizePeer(issued.der);
  assert.equal(old.ok, false);
  const fresh = await registry.authorizePeer(recovered.der);
  assert.equal(fresh.ok && fresh.device.deviceId, identity.deviceId);
});

test("past the window, revoked, removed, disabled, badly signed or stale: refused with what to do", async () => {
  const past = await pairedDevice();
  clock.advance(3 * MINUTE + 41 * DAY);
  await assert.rejects(past.ask(), {
    code: "recovery_refused",
    message: "the certificate expired 41 days ago, past the 30-day recovery window; re-pair with a new code",
  });

  const revoked = await pairedDevice();
  await revoked.registry.revoke(revoked.identity.deviceId, "lost laptop");
  await assert.rejects(revoked.ask(), {
    code: "device_revoked",
    message: "this device was revoked: lost laptop",
  });

  const removed = await pairedDevice();
  await removed.registry.remove(removed.identity.deviceId);
  await assert.rejects(removed.ask(), {
    code: "device_not_found",
    message: /not paired with this gateway.*pair again/,
  });

  const disabled = await pairedDevice(0);
  clock.advance(4 * MINUTE);
  await assert.rejects(disabled.ask(), { code: "recovery_refused", message: /disabled on this gateway/ });

  const forged = await pairedDevice();
  clock.advance(4 * MINUTE);
  const stranger = DeviceIdentity.generate(clock, random);
  await assert.rejects(forged.ask({}, stranger), { code: "signature_invalid" });
  // The revocation reason is told only to the key holder.
  await forged.registry.revoke(forged.identity.deviceId, "secret reason");
  await assert.rejects(forged.ask({}, stranger), (err: Error) => !/secret reason/.test(err.message));
  await assert.rejects(forged.ask({ timestampMs: clock.now() - 10 * MINUTE }), {
    code: "signature_invalid",
    message: /timestamp/,
  });
  await assert.rejects(forged.ask({ heldFingerprint: "XYZ" }), { code: "invalid_input" });
  await assert.rejects(forged.ask({ csrDer: Buffer.alloc(5000) }), { code: "invalid_csr" });
});
