import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { systemRandom } from "../common/random.js";
import { CertificateAuthority } from "../identity/ca.js";
import { createCsr, generateP256KeyPair } from "../identity/csr.js";
import { DeviceIdentity } from "../identity/device-identity.js";
import { CertificateRecovery, recoveryMessage } from "../identity/recovery.js";
import { openGatewayStore } from "../store/gateway-store.js";
import { DevicePairingClient } from "./device-client.js";
import { createPairingServices } from "./pairing-services.js";

// An approval with a role, and what an operator does between the approval and the device collecting
// it (found by review: an uncollected approval used to bring back a removed device, or its old role).

// PBKDF cost is not what these tests exercise; keep them fast.
(limits as { pinPbkdfIterations: number }).pinPbkdfIterations = 1000;

async function setup() {
  const clock = new ManualClock(Date.now());
  const ca = await CertificateAuthority.create({ clock, random: systemRandom });
  const store = openGatewayStore(":memory:", clock, systemRandom);
  const gw = createPairingServices({ store, ca, clock, random: systemRandom });
  const identity = DeviceIdentity.generate(clock, systemRandom);
  const client = new DevicePairingClient(
    {
      begin: (input) => gw.service.begin(input, "127.0.0.1"),
      exchange: (input) => gw.service.exchange(input),
      complete: (input) => gw.service.complete(input),
      status: (input) => gw.service.status(input),
    },
    identity,
    clock,
    systemRandom,
  );
  const pair = async (clientKind: string, name = "laptop") => {
    const minted = await gw.codes.mint({ method: "pin", clientKind });
    return client.pair({
      clientKind,
      deviceName: name,
      platform: "linux",
      codeId: minted.code_id,
      secret: minted.pin!,
    });
  };
  /** Recovery as a device that lost its certificate would ask for it (by its identity key). */
  const recover = async () => {
    const recovery = new CertificateRecovery({ ca, registry: gw.registry, clock, windowMs: 7 * 86_400_000 });
    const { privateKey, publicKey } = generateP256KeyPair();
    const csrDer = await createCsr(privateKey, publicKey);
    const now = clock.now();
    return recovery.recover({
      deviceId: identity.deviceId,
      csrDer,
      timestampMs: now,
      heldFingerprint: "",
      signature: identity.sign(recoveryMessage(identity.deviceId, now, "", csrDer)),
    });
  };
  return { clock, gw, store, identity, client, pair, recover };
}

test("removed before it collected its approval: the approval is withdrawn and the device does not come back", async () => {
  const { clock, gw, store, identity, client, pair } = await setup();
  const pending = await pair("cli");
  await gw.approvals.approve(pending.requestId, { actor: "admin", role: "operator" });
  clock.advance(1);
  // What the admin API's remove does (admin-api.ts): revoke, remove, withdraw the device's open requests.
  await gw.registry.revoke(identity.deviceId, "removed by operator", "admin");
  await gw.registry.remove(identity.deviceId, "admin");
  assert.equal(await gw.approvals.withdrawFor(identity.deviceId, "admin", "removed"), 1);
  const outcome = await client.waitForDecision(pending);
  assert.equal(outcome.state, "expired");
  assert.equal(outcome.clientCertPem, undefined);
  assert.equal(await gw.registry.get(identity.deviceId), undefined);
  const withdrawn = await store.audit.query({ kind: "pairing.withdrawn", limit: 5 });
  assert.deepEqual(withdrawn[0]?.detail, { request_id: pending.requestId, was: "approved", why: "removed" });
  store.close();
});

test("its role changed before it collected its approval: the change stands", async () => {
  const { clock, gw, store, identity, client, pair, recover } = await setup();
  const pending = await pair("cli");
  await gw.approvals.approve(pending.requestId, { actor: "admin", role: "operator" });
  clock.advance(1);
  await gw.registry.setRole(identity.deviceId, undefined, "admin");
  // Even without the withdrawal the admin API makes, a row changed after the decision is not rewritten.
  clock.advance(1);
  const issued = await recover();
  clock.advance(1);
  const outcome = await client.waitForDecision(pending);
  assert.equal(outcome.state, "completed");
  const device = await gw.registry.get(identity.deviceId);
  assert.equal(device?.role, undefined, "the role taken away stays away");
  assert.equal(device?.current.fingerprint, issued.fingerprint);
  const delivered = await gw.registry.authorizePeer(new X509Certificate(outcome.clientCertPem!).raw);
  assert.equal(delivered.ok, false, "the stale approval's certificate is not trusted");
  store.close();
});

test("a node cannot re-pair as a cli (and so never comes to hold a role)", async () => {
  const { clock, gw, store, identity, client, pair } = await setup();
  const first = await pair("node", "worker");
  await gw.approvals.approve(first.requestId, { actor: "admin" });
  await client.waitForDecision(first);
  clock.advance(1_000);
  await assert.rejects(pair("cli", "alice-laptop"), /paired as "node"; an operator must remove it/);
  const device = await gw.registry.get(identity.deviceId);
  assert.equal(device?.clientKind, "node");
  assert.equal(device?.role, undefined);
  store.close();
});
