import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { beforeEach, test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { SeededRandom } from "../common/random.js";
import { certificateFingerprint } from "../crypto/fingerprint.js";
import { openGatewayStore, type SqliteGatewayStore } from "../store/gateway-store.js";
import type { DeviceRepository, PairedDevice } from "./device-records.js";
import { DeviceRegistry } from "./device-registry.js";

/**
 * The allowlist memo behind DeviceRegistry.authorizePeer: repeated checks of an accepted certificate
 * skip the database, and every change to the registry (revocation, removal, rotation, recovery), as
 * well as the passing of time (expiry, end of the rotation overlap), shows on the very next check.
 */

const DEVICE = "01JDEVICE0000000000000000M";
const HOUR = 3_600_000;

let clock: ManualClock;
let store: SqliteGatewayStore;
/** Database reads of the allowlist lookup (by certificate, revoked list). */
let reads: number;
let repo: DeviceRepository;
let registry: DeviceRegistry;
const leaf = () => randomBytes(300);
const trusted = (der: Buffer, lifeMs = 24 * HOUR) => ({
  fingerprint: certificateFingerprint(der),
  expiresAt: clock.now() + lifeMs,
});

/** The store's repository, counting the reads authorizePeer makes (and optionally holding them). */
function counting(inner: DeviceRepository, hold?: () => Promise<void>): DeviceRepository {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== "findByCertificate" && prop !== "findRevokedCertificate") return value.bind(target);
      return async (fingerprint: string) => {
        reads++;
        const found = await value.call(target, fingerprint);
        if (prop === "findByCertificate" && hold) await hold();
        return found;
      };
    },
  });
}

beforeEach(() => {
  clock = new ManualClock(Date.UTC(2026, 11, 6));
  store = openGatewayStore(":memory:", clock, new SeededRandom("memo"));
  reads = 0;
  repo = counting(store.devices);
  registry = new DeviceRegistry(repo, clock);
});

async function pair(der: Buffer, lifeMs?: number, on = registry): Promise<PairedDevice> {
  return on.recordPairing({
    deviceId: DEVICE,
    clientKind: "node",
    deviceName: "worker",
    platform: "linux",
    identityPublicKey: Buffer.alloc(32, 1),
    certificate: trusted(der, lifeMs),
  });
}

test("an accepted certificate is checked again from memory, and the record handed out is frozen", async () => {
  const cert = leaf();
  await pair(cert);
  const first = await registry.authorizePeer(cert);
  assert.equal(first.ok, true);
  const readsAfterFirst = reads;
  assert.ok(readsAfterFirst > 0);
  for (let i = 0; i < 5; i++) assert.equal((await registry.authorizePeer(cert)).ok, true);
  assert.equal(reads, readsAfterFirst, "no database read after the first acceptance");
  assert.ok(first.ok && Object.isFrozen(first.device) && Object.isFrozen(first.device.current));
});

test("revocation shows on the very next check after remembered acceptances", async () => {
  const cert = leaf();
  await pair(cert);
  assert.equal((await registry.authorizePeer(cert)).ok, true);
  assert.equal((await registry.authorizePeer(cert)).ok, true);
  await registry.revoke(DEVICE, "stolen");
  const decision = await registry.authorizePeer(cert);
  assert.equal(!decision.ok && decision.reason, "certificate_revoked");
});

test("removal, recovery and a second rotation each show on the next check", async () => {
  const [a, b, c, d] = [leaf(), leaf(), leaf(), leaf()];
  await pair(a);
  assert.equal((await registry.authorizePeer(a)).ok, true);
  await registry.recordRotation(DEVICE, trusted(b));
  assert.equal((await registry.authorizePeer(a)).ok, true, "inside the overlap");
  assert.equal((await registry.authorizePeer(b)).ok, true);
  await registry.recordRotation(DEVICE, trusted(c));
  const twoBack = await registry.authorizePeer(a);
  assert.equal(!twoBack.ok && twoBack.reason, "certificate_revoked");
  assert.equal((await registry.authorizePeer(c)).ok, true);
  await registry.recordRecovery(DEVICE, trusted(d), {});
  const replaced = await registry.authorizePeer(c);
  assert.equal(!replaced.ok && replaced.reason, "certificate_revoked");
  assert.equal((await registry.authorizePeer(d)).ok, true);
  await registry.revoke(DEVICE, "retired");
  await registry.remove(DEVICE);
  store.db.prepare("DELETE FROM revoked_certificates").run();
  const removed = await registry.authorizePeer(d);
  assert.equal(!removed.ok && removed.reason, "unknown_certificate");
});

test("expiry and the end of the rotation overlap show on the next check (injected clock)", async () => {
  const [first, second] = [leaf(), leaf()];
  await pair(first, HOUR);
  assert.equal((await registry.authorizePeer(first)).ok, true);
  clock.advance(HOUR - 1);
  assert.equal((await registry.authorizePeer(first)).ok, true);
  clock.advance(1);
  const expired = await registry.authorizePeer(first);
  assert.equal(!expired.ok && expired.reason, "certificate_expired");

  await registry.revoke(DEVICE, "reset");
  await registry.remove(DEVICE);
  const [old, next] = [leaf(), leaf()];
  await pair(old, 24 * HOUR);
  await registry.recordRotation(DEVICE, trusted(next));
  assert.equal((await registry.authorizePeer(old)).ok, true);
  clock.advance(limits.rotationOverlapMs - 1);
  assert.equal((await registry.authorizePeer(old)).ok, true);
  clock.advance(1);
  const ended = await registry.authorizePeer(old);
  assert.equal(!ended.ok && ended.reason, "rotation_overlap_ended");
  assert.equal((await registry.authorizePeer(second)).ok, false, "never paired");
});

test("a check that read the database before a revocation finished is not remembered", async () => {
  const cert = leaf();
  await pair(cert);
  let release: () => void = () => {};
  let held: () => void = () => {};
  const holding = new Promise<void>((resolve) => {
    held = resolve;
  });
  const slow = new DeviceRegistry(
    counting(store.devices, () => {
      held();
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    }),
    clock,
  );
  const racing = slow.authorizePeer(cert);
  await holding; // the lookup has read the device as it was, and waits
  await registry.revoke(DEVICE, "compromised");
  release();
  // What it read was true when read (as without the memo); it must not outlive the revocation.
  assert.equal((await racing).ok, true);
  const next = await slow.authorizePeer(cert);
  assert.equal(!next.ok && next.reason, "certificate_revoked");
});

test("registries over the same repository forget together", async () => {
  const cert = leaf();
  const other = new DeviceRegistry(repo, clock);
  await pair(cert, undefined, other);
  assert.equal((await registry.authorizePeer(cert)).ok, true);
  await other.revoke(DEVICE, "revoked through the other registry");
  const decision = await registry.authorizePeer(cert);
  assert.equal(!decision.ok && decision.reason, "certificate_revoked");
});

test("refusals are never remembered", async () => {
  const cert = leaf();
  const before = await registry.authorizePeer(cert);
  assert.equal(!before.ok && before.reason, "unknown_certificate");
  await pair(cert);
  assert.equal((await registry.authorizePeer(cert)).ok, true);
});
