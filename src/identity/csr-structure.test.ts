import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { test } from "node:test";
import { OID_ECDSA_SHA256, OID_ECDSA_SHA384, P256_SPKI_PREFIX } from "./certificate-der.js";
import { generateP256KeyPair, parseAndVerifyCsr } from "./csr.js";
import { ecdsaHashOf, readCsrStructure } from "./csr-structure.js";
import { der, derBitString, derOid, derSequence, derSet } from "./der-writer.js";
import { IdentityError } from "./errors.js";

/**
 * Hand-built PKCS#10 requests, properly signed, that differ from a good one in one point of shape:
 * each must be refused (or, for a valid key in another encoding, accepted with the canonical key).
 */

const NAME = derSequence(derSet(derSequence(derOid("2.5.4.3"), der(0x0c, Buffer.from("x")))));
const NO_ATTRIBUTES = der(0xa0);
const keys = generateP256KeyPair();
const SPKI = keys.publicKey.export({ type: "spki", format: "der" });

interface Shape {
  version?: Buffer;
  spki?: Buffer;
  attributes?: Buffer | null;
  extra?: Buffer;
  algorithm?: Buffer;
  hash?: string;
  key?: KeyObject;
  mangleSignature?: (bitString: Buffer) => Buffer;
}

function handmadeCsr(shape: Shape = {}): Buffer {
  const info = derSequence(
    shape.version ?? Buffer.of(0x02, 0x01, 0x00),
    NAME,
    shape.spki ?? SPKI,
    ...(shape.attributes === null ? [] : [shape.attributes ?? NO_ATTRIBUTES]),
    ...(shape.extra ? [shape.extra] : []),
  );
  const signature = sign(shape.hash ?? "sha256", info, {
    key: shape.key ?? keys.privateKey,
    dsaEncoding: "der",
  });
  const bits = derBitString(signature);
  return derSequence(
    info,
    shape.algorithm ?? derSequence(OID_ECDSA_SHA256),
    shape.mangleSignature ? shape.mangleSignature(bits) : bits,
  );
}

async function refused(der: Buffer, code: string, message: RegExp): Promise<void> {
  await assert.rejects(parseAndVerifyCsr(der), (err: unknown) => {
    assert.ok(err instanceof IdentityError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

test("a hand-made CSR is accepted, with SHA-256 or SHA-384", async () => {
  const verified = await parseAndVerifyCsr(handmadeCsr());
  assert.deepEqual(verified.spkiDer, SPKI);
  assert.ok(verified.publicKey.equals(keys.publicKey));
  const sha384 = handmadeCsr({ algorithm: derSequence(OID_ECDSA_SHA384), hash: "sha384" });
  assert.ok((await parseAndVerifyCsr(sha384)).publicKey.equals(keys.publicKey));
});

test("wrong shapes are invalid_csr: version, attributes, extra fields, signature bits, algorithm", async () => {
  const malformed = /could not be parsed as PKCS#10/;
  await refused(handmadeCsr({ version: Buffer.of(0x02, 0x01, 0x01) }), "invalid_csr", malformed);
  await refused(handmadeCsr({ version: Buffer.of(0x02, 0x02, 0x00, 0x00) }), "invalid_csr", malformed);
  await refused(handmadeCsr({ attributes: null }), "invalid_csr", malformed);
  await refused(handmadeCsr({ attributes: der(0xa1) }), "invalid_csr", malformed);
  await refused(handmadeCsr({ extra: Buffer.of(0x05, 0x00) }), "invalid_csr", malformed);
  // Garbage inside the (otherwise ignored) attributes: the whole input must be well-framed DER.
  await refused(
    handmadeCsr({ attributes: der(0xa0, Buffer.of(0x30, 0x05, 0x00)) }),
    "invalid_csr",
    malformed,
  );
  // A BIT STRING with unused bits, or an empty one.
  const unused = (bits: Buffer) => Buffer.concat([bits.subarray(0, 2), Buffer.of(1), bits.subarray(3)]);
  await refused(handmadeCsr({ mangleSignature: unused }), "invalid_csr", malformed);
  await refused(
    handmadeCsr({ mangleSignature: () => Buffer.of(0x03, 0x01, 0x00) }),
    "invalid_csr",
    malformed,
  );
  // ECDSA with parameters (RFC 5758 says absent), or an unknown algorithm.
  const withNull = derSequence(OID_ECDSA_SHA256, Buffer.of(0x05, 0x00));
  await refused(handmadeCsr({ algorithm: withNull }), "invalid_csr", /must be signed with ECDSA/);
  await refused(handmadeCsr({ algorithm: derSequence(derOid("1.2.3.4")) }), "invalid_csr", /ECDSA/);
  // The algorithm says SHA-384 but the signature was made over SHA-256.
  await refused(handmadeCsr({ algorithm: derSequence(OID_ECDSA_SHA384) }), "invalid_csr", /does not verify/);
});

test("keys: off-curve points are unsupported_key; a compressed P-256 key is accepted, re-encoded", async () => {
  const offCurve = Buffer.from(SPKI);
  offCurve[90] = (offCurve[90] as number) ^ 1;
  await refused(handmadeCsr({ spki: offCurve }), "unsupported_key", /malformed/);
  const point = SPKI.subarray(P256_SPKI_PREFIX.length);
  const compressedPoint = Buffer.concat([
    Buffer.of(0x02 | ((point[64] as number) & 1)),
    point.subarray(1, 33),
  ]);
  const compressed = derSequence(
    derSequence(derOid("1.2.840.10045.2.1"), derOid("1.2.840.10045.3.1.7")),
    derBitString(compressedPoint),
  );
  const verified = await parseAndVerifyCsr(handmadeCsr({ spki: compressed }));
  assert.deepEqual(verified.spkiDer, SPKI);
  // A P-384 key, properly signed, is named in the refusal.
  const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  const p384Csr = handmadeCsr({
    spki: p384.publicKey.export({ type: "spki", format: "der" }),
    key: p384.privateKey,
  });
  await refused(p384Csr, "unsupported_key", /secp384r1/);
});

test("readCsrStructure and ecdsaHashOf never throw on junk", () => {
  assert.equal(readCsrStructure(Buffer.alloc(0)), undefined);
  assert.equal(readCsrStructure(Buffer.from("3000", "hex")), undefined);
  assert.equal(ecdsaHashOf(Buffer.alloc(0)), undefined);
  assert.equal(ecdsaHashOf(derSequence(OID_ECDSA_SHA256)), "sha256");
});
