import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";
import { ManualClock } from "../common/clock.js";
import { SeededRandom } from "../common/random.js";
import { DeviceIdentity, verifyIdentitySignature } from "./device-identity.js";
import { InMemorySecretStore } from "./secret-store.js";

const clock = new ManualClock(Date.UTC(2026, 10, 23));

test("a device identity survives save and load with the same id, key and fingerprint", async () => {
  const store = new InMemorySecretStore();
  const created = await DeviceIdentity.loadOrCreate(store, clock, new SeededRandom("id"));
  const loaded = await DeviceIdentity.load(store);
  assert.ok(loaded);
  assert.equal(loaded.deviceId, created.deviceId);
  assert.deepEqual(loaded.publicKey, created.publicKey);
  assert.equal(loaded.fingerprint, created.fingerprint);
  assert.equal(created.publicKey.length, 32);
  const sig = loaded.sign(Buffer.from("hello"));
  assert.equal(verifyIdentitySignature(created.publicKey, Buffer.from("hello"), sig), true);
});

test("inspect and JSON show the id and fingerprint, never the private key", async () => {
  const store = new InMemorySecretStore();
  const identity = await DeviceIdentity.loadOrCreate(store, clock, new SeededRandom("x"));
  const stored = JSON.parse((await store.read("device/identity"))!.toString()) as { privateKey: string };
  for (const shown of [inspect(identity, { depth: 5, showHidden: true }), JSON.stringify(identity)]) {
    assert.ok(!shown.includes(stored.privateKey), shown);
    assert.ok(shown.includes(identity.deviceId));
  }
});

test("a corrupt or foreign stored identity is refused with a clear error", async () => {
  const store = new InMemorySecretStore();
  assert.equal(await DeviceIdentity.load(store), undefined);
  await store.write("device/identity", Buffer.from("{not json"));
  await assert.rejects(DeviceIdentity.load(store), {
    code: "secret_store_corrupt",
    message: /not valid JSON/,
  });
  await store.write("device/identity", Buffer.from(JSON.stringify({ version: 9 })));
  await assert.rejects(DeviceIdentity.load(store), {
    code: "secret_store_corrupt",
    message: /unknown shape/,
  });
  await store.write(
    "device/identity",
    Buffer.from(JSON.stringify({ version: 1, deviceId: "bad", privateKey: "AA" })),
  );
  await assert.rejects(DeviceIdentity.load(store), { code: "invalid_input", message: /canonical ULID/ });
});

test("signature verification treats malformed keys and signatures as invalid, not as crashes", () => {
  assert.equal(verifyIdentitySignature(Buffer.alloc(31), Buffer.from("m"), Buffer.alloc(64)), false);
  assert.equal(verifyIdentitySignature(Buffer.alloc(32), Buffer.from("m"), Buffer.alloc(63)), false);
  assert.equal(verifyIdentitySignature(Buffer.alloc(32, 0xff), Buffer.from("m"), Buffer.alloc(64)), false);
});
