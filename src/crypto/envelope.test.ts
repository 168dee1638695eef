import assert from "node:assert/strict";
import { test } from "node:test";
import { SeededRandom } from "../common/random.js";
import { ENVELOPE_OVERHEAD, openEnvelope, sealEnvelope } from "./envelope.js";

const FORMAT = { magic: "TST1", version: 1 };
const key = Buffer.alloc(32, 7);
const aad = Buffer.from("name-a");

test("seal/open round trip with the header and AAD authenticated", () => {
  const random = new SeededRandom("nonce");
  const sealed = sealEnvelope(FORMAT, key, Buffer.from("hello"), aad, random);
  assert.equal(sealed.length, 5 + ENVELOPE_OVERHEAD);
  assert.equal(sealed.subarray(0, 4).toString(), "TST1");
  assert.equal(openEnvelope(FORMAT, key, sealed, aad).toString(), "hello");
  // fresh nonce each time
  assert.notDeepEqual(sealEnvelope(FORMAT, key, Buffer.from("hello"), aad, random), sealed);
});

test("every single-byte change, another AAD, another key, truncation or wrong magic fails to open", () => {
  const sealed = sealEnvelope(FORMAT, key, Buffer.from("payload"), aad, new SeededRandom("n"));
  for (let i = 0; i < sealed.length; i++) {
    const copy = Buffer.from(sealed);
    copy[i] = (copy[i] as number) ^ 0x01;
    assert.throws(
      () => openEnvelope(FORMAT, key, copy, aad),
      (err: Error & { code?: string }) =>
        ["envelope_auth_failed", "envelope_malformed"].includes(err.code ?? ""),
    );
  }
  assert.throws(() => openEnvelope(FORMAT, key, sealed, Buffer.from("name-b")), {
    code: "envelope_auth_failed",
  });
  assert.throws(() => openEnvelope(FORMAT, Buffer.alloc(32, 8), sealed, aad), {
    code: "envelope_auth_failed",
  });
  assert.throws(() => openEnvelope(FORMAT, key, sealed.subarray(0, 10), aad), { code: "envelope_malformed" });
  assert.throws(() => openEnvelope({ magic: "ZZZ1", version: 1 }, key, sealed, aad), {
    code: "envelope_malformed",
  });
  assert.throws(() => openEnvelope(FORMAT, Buffer.alloc(16), sealed, aad), { code: "invalid_key" });
});

test("random inputs never crash the decoder (fuzz)", () => {
  const random = new SeededRandom("fuzz");
  for (let i = 0; i < 2000; i++) {
    const junk = random.bytes(random.bytes(1)[0] as number);
    if (i % 3 === 0) Buffer.from("TST1\x01").copy(junk);
    assert.throws(
      () => openEnvelope(FORMAT, key, junk, aad),
      (err: Error & { code?: string }) =>
        ["envelope_auth_failed", "envelope_malformed"].includes(err.code ?? ""),
    );
  }
});
