import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { SeededRandom } from "../common/random.js";
import { certificateFingerprint } from "../crypto/fingerprint.js";
import { openGatewayStore } from "../store/gateway-store.js";
import { deviceRefusal } from "../transport/access-policy.js";
import { DeviceRegistry } from "./device-registry.js";
import { assertRoleFits, isDemotion, parseRole, roleAllows } from "./device-roles.js";

test("roles: operator includes viewer; no role allows nothing; unknown roles are refused", () => {
  assert.ok(roleAllows("operator", "viewer"));
  assert.ok(roleAllows("operator", "operator"));
  assert.ok(roleAllows("viewer", "viewer"));
  assert.equal(roleAllows("viewer", "operator"), false);
  assert.equal(roleAllows(undefined, "viewer"), false);
  assert.equal(parseRole("none"), undefined);
  assert.equal(parseRole("viewer"), "viewer");
  assert.throws(() => parseRole("admin"), /operator, viewer or none/);
  assert.throws(() => parseRole("Operator"), /operator, viewer or none/);
  assert.throws(() => assertRoleFits("node", "viewer"), /"node" cannot hold the viewer role/);
  assert.doesNotThrow(() => assertRoleFits("node", undefined));
  assert.doesNotThrow(() => assertRoleFits("desktop", "operator"));
});

test("the policy table: roles for the operator methods, client kind for the node methods", () => {
  const cli = (role?: "viewer" | "operator") => ({ clientKind: "cli", ...(role ? { role } : {}) });
  assert.equal(deviceRefusal("viewer", cli("viewer")), undefined);
  assert.equal(deviceRefusal("viewer", cli("operator")), undefined);
  assert.match(deviceRefusal("operator", cli("viewer"))!, /needs the operator role; this device is a viewer/);
  assert.match(deviceRefusal("viewer", cli())!, /this device has no role/);
  assert.equal(deviceRefusal("device", cli()), undefined);
  assert.match(deviceRefusal("node", cli("operator"))!, /paired as "cli"/);
  assert.equal(deviceRefusal("node", { clientKind: "node" }), undefined);
  // A node's row that somehow holds a role (restored, written by hand) still opens nothing.
  assert.match(deviceRefusal("viewer", { clientKind: "node", role: "operator" })!, /a node never holds one/);
});

test("setRole: changes a device's role (audited with from and to), never for a node or a revoked device", async () => {
  const clock = new ManualClock();
  const store = openGatewayStore(":memory:", clock, new SeededRandom("roles"));
  const registry = new DeviceRegistry(store.devices, clock);
  const der = randomBytes(300);
  const record = (deviceId: string, clientKind: string, cert = der) => ({
    deviceId,
    clientKind,
    deviceName: deviceId,
    platform: "linux",
    identityPublicKey: randomBytes(32),
    certificate: { fingerprint: certificateFingerprint(cert), expiresAt: clock.now() + 3_600_000 },
  });
  const laptop = "01JLAPTOP00000000000000000";
  const worker = "01JWORKER00000000000000000";
  await registry.recordPairing({ ...record(laptop, "cli"), role: "viewer" });
  assert.equal((await registry.authorizePeer(der)).ok && (await registry.get(laptop))?.role, "viewer");

  clock.advance(1);
  assert.equal(
    (await registry.setRole(laptop, "operator", "device:01JOTHER000000000000000000")).role,
    "operator",
  );
  // The allowlist check (run on every call) sees the new role at once.
  const decision = await registry.authorizePeer(der);
  assert.ok(decision.ok && decision.device.role === "operator");
  clock.advance(1);
  assert.equal((await registry.setRole(laptop, undefined)).role, undefined);
  const changes = (await store.audit.query({ kind: "device.role_changed", limit: 10 })).reverse();
  assert.deepEqual(
    changes.map((e) => [e.actor, e.detail]),
    [
      ["device:01JOTHER000000000000000000", { from: "viewer", to: "operator" }],
      ["admin", { from: "operator", to: null }],
    ],
  );

  await assert.rejects(
    registry.recordPairing({ ...record(worker, "node", randomBytes(300)), role: "operator" }),
    /cannot hold/,
  );
  await registry.recordPairing(record(worker, "node", randomBytes(300)));
  await assert.rejects(registry.setRole(worker, "viewer"), /cannot hold/);
  await registry.revoke(laptop, "lost");
  await assert.rejects(registry.setRole(laptop, "viewer"), /revoked/);
  await assert.rejects(registry.setRole("01JNOBODY00000000000000000", "viewer"), /no paired device/);
  store.close();
});

test("isDemotion: only a change that takes something away (to none included) is a demotion", () => {
  assert.equal(isDemotion("operator", "viewer"), true);
  assert.equal(isDemotion("operator", undefined), true);
  assert.equal(isDemotion("viewer", undefined), true);
  assert.equal(isDemotion("viewer", "operator"), false);
  assert.equal(isDemotion(undefined, "viewer"), false);
  assert.equal(isDemotion("operator", "operator"), false);
  assert.equal(isDemotion(undefined, undefined), false);
});
