import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { beforeEach, test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { SeededRandom } from "../common/random.js";
import { certificateFingerprint } from "../crypto/fingerprint.js";
import { openGatewayStore, type SqliteGatewayStore } from "../store/gateway-store.js";
import { DeviceRegistry } from "./device-registry.js";

const DEVICE = "01JDEVICE0000000000000000A";
const HOUR = 3_600_000;

let clock: ManualClock;
let store: SqliteGatewayStore;
let registry: DeviceRegistry;
// Certificates are opaque DER to the registry; random bytes stand in for distinct leaves.
const leaf = () => randomBytes(300);
const trusted = (der: Buffer, lifeMs = 24 * HOUR) => ({
  fingerprint: certificateFingerprint(der),
  expiresAt: clock.now() + lifeMs,
});

beforeEach(() => {
  clock = new ManualClock(Date.UTC(2026, 10, 23));
  store = openGatewayStore(":memory:", clock, new SeededRandom("registry"));
  registry = new DeviceRegistry(store.devices, clock);
});

async function pair(der: Buffer, identity = Buffer.alloc(32, 1)) {
  return registry.recordPairing({
    deviceId: DEVICE,
    clientKind: "node",
    deviceName: "worker-1",
    platform: "linux",
    identityPublicKey: identity,
    certificate: trusted(der),
  });
}

test("the current certificate is accepted", async () => {
  const cert = leaf();
  await pair(cert);
  const ok = await registry.authorizePeer(cert);
  assert.equal(ok.ok, true);
  assert.equal(ok.ok && ok.device.deviceId, DEVICE);
  assert.equal(ok.ok && ok.certificate, "current");
});

test("an unknown certificate is refused with its own reason", async () => {
  await pair(leaf());
  const stranger = leaf();
  const decision = await registry.authorizePeer(stranger);
  assert.deepEqual(decision, {
    ok: false,
    reason: "unknown_certificate",
    fingerprint: certificateFingerprint(stranger),
  });
});

test("the previous certificate is accepted only inside the rotation overlap", async () => {
  const first = leaf();
  const second = leaf();
  await pair(first);
  clock.advance(16 * HOUR);
  await registry.recordRotation(DEVICE, trusted(second));
  const during = await registry.authorizePeer(first);
  assert.equal(during.ok && during.certificate, "previous");
  clock.advance(limits.rotationOverlapMs - 1);
  assert.equal((await registry.authorizePeer(first)).ok, true);
  clock.advance(1);
  const afterOverlap = await registry.authorizePeer(first);
  assert.equal(!afterOverlap.ok && afterOverlap.reason, "rotation_overlap_ended");
  assert.equal((await registry.authorizePeer(second)).ok, true);
});

test("a short-lived certificate's overlap is half its remaining life, so it ends before the certificate expires", async () => {
  const MINUTE = 60_000;
  const first = leaf();
  const second = leaf();
  await registry.recordPairing({
    deviceId: DEVICE,
    clientKind: "node",
    deviceName: "worker-1",
    platform: "linux",
    identityPublicKey: Buffer.alloc(32, 1),
    certificate: trusted(first, 3 * MINUTE),
  });
  clock.advance(2 * MINUTE);
  const rotated = await registry.recordRotation(DEVICE, trusted(second, 3 * MINUTE));
  assert.equal(rotated.previous?.acceptedUntil, clock.now() + 30_000);
  clock.advance(30_000 - 1);
  assert.equal((await registry.authorizePeer(first)).ok, true);
  clock.advance(1);
  const after = await registry.authorizePeer(first);
  assert.equal(!after.ok && after.reason, "rotation_overlap_ended");
});

test("a second rotation revokes the certificate two generations back", async () => {
  const [a, b, c] = [leaf(), leaf(), leaf()];
  await pair(a);
  await registry.recordRotation(DEVICE, trusted(b));
  await registry.recordRotation(DEVICE, trusted(c));
  const decision = await registry.authorizePeer(a);
  assert.equal(!decision.ok && decision.reason, "certificate_revoked");
  const kinds = (await store.audit.recent()).map((r) => r.kind);
  assert.deepEqual(kinds, ["device.certificate_rotated", "device.certificate_rotated", "device.paired"]);
});

test("a revoked device is refused with a reason distinct from an unknown certificate", async () => {
  const cert = leaf();
  await pair(cert);
  await registry.revoke(DEVICE, "lost laptop");
  const decision = await registry.authorizePeer(cert);
  assert.equal(decision.ok, false);
  assert.ok(!decision.ok && ["certificate_revoked", "device_revoked"].includes(decision.reason));
  assert.equal(!decision.ok && decision.deviceId, DEVICE);
  const device = await registry.get(DEVICE);
  assert.equal(device?.revokedReason, "lost laptop");
  await assert.rejects(pair(leaf()), { code: "device_revoked" });
  await assert.rejects(registry.recordRotation(DEVICE, trusted(leaf())), { code: "device_revoked" });
});

test("a revoked device whose certificate is not on the revoked list is still refused as device_revoked", async () => {
  const cert = leaf();
  await pair(cert);
  await registry.revoke(DEVICE, "stolen");
  // Simulate the revoked-certificate entry having been pruned early: the device flag alone must refuse.
  store.db.prepare("DELETE FROM revoked_certificates").run();
  const decision = await registry.authorizePeer(cert);
  assert.equal(!decision.ok && decision.reason, "device_revoked");
});

test("an expired current certificate is refused even if TLS let it through", async () => {
  const cert = leaf();
  await pair(cert);
  clock.advance(24 * HOUR);
  const decision = await registry.authorizePeer(cert);
  assert.equal(!decision.ok && decision.reason, "certificate_expired");
});

test("revoked certificates are pruned once they would have expired", async () => {
  const cert = leaf();
  await pair(cert);
  await registry.revoke(DEVICE, "retired");
  assert.equal(await registry.pruneRevokedCertificates(), 0);
  clock.advance(24 * HOUR);
  assert.equal(await registry.pruneRevokedCertificates(), 1);
  assert.deepEqual(await registry.listRevokedCertificates(), []);
});

test("re-pairing needs the same identity key; removal clears a revocation", async () => {
  await pair(leaf());
  await assert.rejects(pair(leaf(), Buffer.alloc(32, 2)), { code: "identity_mismatch" });
  const again = leaf();
  await pair(again);
  assert.equal((await registry.authorizePeer(again)).ok, true);
  await registry.revoke(DEVICE, "test");
  assert.equal(await registry.remove(DEVICE), true);
  assert.equal(await registry.remove(DEVICE), false);
  const fresh = leaf();
  await pair(fresh, Buffer.alloc(32, 3));
  assert.equal((await registry.authorizePeer(fresh)).ok, true);
});
