import assert from "node:assert/strict";
import { test } from "node:test";
import { SeededRandom } from "../common/random.js";
import { openValue, SEALED_OVERHEAD, sealValue, vaultKeyId } from "./sealed-blob.js";

const random = new SeededRandom("sealed-blob");
const key = random.bytes(32);
const value = Buffer.from("sk-live-0123456789");

test("a sealed value opens under its own scope and key, with a fixed overhead", () => {
  const blob = sealValue(key, "global", "api_key", value, random);
  assert.equal(blob.length, value.length + SEALED_OVERHEAD);
  assert.ok(!blob.includes(value), "the value is not in the blob in the clear");
  assert.deepEqual(openValue(key, "global", "api_key", blob), value);
  assert.deepEqual(
    openValue(key, "global", "empty", sealValue(key, "global", "empty", Buffer.alloc(0), random)),
    Buffer.alloc(0),
  );
});

test("two seals of one value differ (fresh data key and nonces)", () => {
  const a = sealValue(key, "global", "k", value, random);
  const b = sealValue(key, "global", "k", value, random);
  assert.notDeepEqual(a, b);
});

test("replayed under another scope or key, the blob does not open", () => {
  const blob = sealValue(key, "principal:alice", "token", value, random);
  for (const [scope, k] of [
    ["principal:bob", "token"],
    ["global", "token"],
    ["principal:alice", "token2"],
    ["principal:alic", "etoken"],
  ] as const)
    assert.throws(() => openValue(key, scope, k, blob), {
      code: "blob_corrupt",
      message: /failed authentication/,
    });
});

test("every tampered byte is detected", () => {
  const blob = sealValue(key, "global", "k", value, random);
  for (let i = 0; i < blob.length; i++) {
    const bad = Buffer.from(blob);
    bad[i] = bad[i]! ^ 0x01;
    assert.throws(
      () => openValue(key, "global", "k", bad),
      { code: /blob_corrupt|wrong_vault_key/ },
      `byte ${i}`,
    );
  }
  assert.throws(() => openValue(key, "global", "k", blob.subarray(0, blob.length - 1)), {
    code: "blob_corrupt",
  });
  assert.throws(() => openValue(key, "global", "k", blob.subarray(0, 20)), { code: "blob_corrupt" });
  assert.throws(() => openValue(key, "global", "k", Buffer.concat([blob, Buffer.of(0)])), {
    code: "blob_corrupt",
  });
});

test("a blob from another vault key fails with wrong_vault_key", () => {
  const other = random.bytes(32);
  assert.notDeepEqual(vaultKeyId(other), vaultKeyId(key));
  const blob = sealValue(other, "global", "k", value, random);
  assert.throws(() => openValue(key, "global", "k", blob), { code: "wrong_vault_key" });
});
