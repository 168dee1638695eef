import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { type Random, SeededRandom } from "../common/random.js";
import { CryptoError } from "./errors.js";
import {
  assertConfirmation,
  comparisonCode,
  computeVerifier,
  decodeScalar,
  deriveSpakeSecrets,
  encodeScalar,
  type ProverResult,
  proverFinish,
  proverStart,
  type SpakeIdentities,
  spake2plusInternalsForTests,
  type VerifierResult,
  verifierRespond,
  verifyConfirmation,
} from "./spake2plus.js";
import { GROUP_ORDER, lengthPrefix, M, N, Point } from "./spake2plus-transcript.js";

interface VectorFile {
  vectors: Record<string, string>;
  pbkdf_example: Record<string, string | number>;
}
const file = JSON.parse(
  readFileSync(new URL("./testdata/spake2plus-rfc9383-vectors.json", import.meta.url), "utf8"),
) as VectorFile;
const v = file.vectors;
const pb = file.pbkdf_example;
const hex = (name: string): Buffer => {
  const value = v[name];
  assert.equal(typeof value, "string", `vector ${name} is missing`);
  return Buffer.from(value as string, "hex");
};
const big = (name: string): bigint => BigInt(`0x${v[name]}`);

/** Hands out exactly the queued chunks, in order: how the tests inject the RFC's x and y. */
class ScriptedRandom implements Random {
  readonly #chunks: Buffer[];
  constructor(...chunks: Uint8Array[]) {
    this.#chunks = chunks.map((c) => Buffer.from(c));
  }
  bytes(length: number): Buffer {
    const next = this.#chunks.shift();
    assert.ok(next, "ScriptedRandom ran out of bytes");
    assert.equal(next.length, length);
    return next;
  }
}

const rfcIds: SpakeIdentities = {
  context: hex("Context"),
  idProver: hex("idProver"),
  idVerifier: hex("idVerifier"),
};
const rfcVerifier = () => ({ w0: big("w0"), L: hex("L") });

test("RFC 9383 vectors: identities and M, N", () => {
  assert.equal(hex("Context").toString(), v["context_text"]);
  assert.equal(hex("idProver").toString(), v["idProver_text"]);
  assert.equal(hex("idVerifier").toString(), v["idVerifier_text"]);
  assert.equal(Buffer.from(M.toBytes(true)).toString("hex"), v["M"]);
  assert.equal(Buffer.from(N.toBytes(true)).toString("hex"), v["N"]);
  assert.equal(Buffer.from(M.toBytes(false)).toString("hex"), v["M_uncompressed"]);
  assert.equal(Buffer.from(N.toBytes(false)).toString("hex"), v["N_uncompressed"]);
});

test("RFC 9383 vectors: w0, w1 -> L and the scalar codec", () => {
  const { w0, L } = computeVerifier(big("w0"), big("w1"));
  assert.equal(L.toString("hex"), v["L"]);
  assert.equal(w0, big("w0"));
  assert.equal(encodeScalar(big("w0")).toString("hex"), v["w0"]);
  assert.equal(decodeScalar(hex("w1")), big("w1"));
  assert.equal(encodeScalar(1n).toString("hex"), `${"00".repeat(31)}01`);
  assert.equal(decodeScalar(encodeScalar(GROUP_ORDER - 1n)), GROUP_ORDER - 1n);
  for (const bad of [encodeScalar(GROUP_ORDER - 1n).subarray(1), Buffer.alloc(33), Buffer.alloc(32, 0xff)])
    assert.throws(() => decodeScalar(bad), { code: "invalid_scalar" });
  assert.throws(() => decodeScalar(Buffer.from(GROUP_ORDER.toString(16), "hex")), { code: "invalid_scalar" });
  assert.throws(() => encodeScalar(GROUP_ORDER), { code: "invalid_scalar" });
  assert.throws(() => encodeScalar(-1n), { code: "invalid_scalar" });
});

test("RFC 9383 vectors: x, y -> shareP, shareV, Z, V, TT, K_main, confirmation keys and MACs, K_shared", () => {
  const start = proverStart(big("w0"), new ScriptedRandom(hex("x")));
  assert.equal(start.x, big("x"));
  assert.equal(start.shareP.toString("hex"), v["shareP"]);

  const { verifierRespondDetailed, proverFinishDetailed } = spake2plusInternalsForTests;
  const verifier = verifierRespondDetailed(rfcVerifier(), start.shareP, rfcIds, new ScriptedRandom(hex("y")));
  const prover = proverFinishDetailed({ w0: big("w0"), w1: big("w1"), ...start }, verifier.shareV, rfcIds);
  assert.equal(verifier.shareV.toString("hex"), v["shareV"]);
  for (const side of [verifier, prover]) {
    assert.equal(side.Z.toString("hex"), v["Z"]);
    assert.equal(side.V.toString("hex"), v["V"]);
    assert.equal(side.TT.toString("hex"), v["TT"]);
    assert.equal(side.keys.kMain.toString("hex"), v["K_main"]);
    assert.equal(side.keys.kConfirmP.toString("hex"), v["K_confirmP"]);
    assert.equal(side.keys.kConfirmV.toString("hex"), v["K_confirmV"]);
    assert.equal(side.keys.confirmP.toString("hex"), v["confirmP"]);
    assert.equal(side.keys.confirmV.toString("hex"), v["confirmV"]);
    assert.equal(side.keys.kShared.toString("hex"), v["K_shared"]);
  }
});

test("RFC 9383 vectors through the public API, confirmations checked both ways", () => {
  const start = proverStart(big("w0"), new ScriptedRandom(hex("x")));
  const ver = verifierRespond(rfcVerifier(), start.shareP, rfcIds, new ScriptedRandom(hex("y")));
  assert.equal(ver.shareV.toString("hex"), v["shareV"]);
  assert.equal(ver.confirmV.toString("hex"), v["confirmV"]);
  const pro = proverFinish({ w0: big("w0"), w1: big("w1"), ...start }, ver.shareV, rfcIds);
  assert.ok(verifyConfirmation(pro.expectedConfirmV, ver.confirmV));
  assert.equal(pro.confirmP.toString("hex"), v["confirmP"]);
  assert.ok(verifyConfirmation(ver.expectedConfirmP, pro.confirmP));
  assertConfirmation(ver.expectedConfirmP, pro.confirmP);
  assert.equal(pro.kMain.toString("hex"), v["K_main"]);
  assert.equal(pro.kShared.toString("hex"), v["K_shared"]);
  assert.equal(ver.kShared.toString("hex"), v["K_shared"]);
  // Regression pin for the project's comparison code: HKDF-SHA256(no salt, K_shared,
  // "palyra-pairing-comparison-v1", 8) as a big-endian uint64, mod 10^6 (device and gateway must agree).
  assert.equal(comparisonCode(ver.kShared), "293288");
  assert.equal(comparisonCode(ver.kShared), comparisonCode(pro.kShared));
});

test("worked PBKDF example (DESIGN section 5): code -> w0, w1 -> L", () => {
  const code = Buffer.from(pb["code"] as string, "hex");
  assert.equal(code.toString(), pb["code_text"]);
  assert.equal(
    Buffer.concat([lengthPrefix(code.length), code]).toString("hex"),
    pb["pbkdf_password"],
    "len(code) is 8 bytes little-endian",
  );
  assert.equal(BigInt(`0x${pb["n"]}`), GROUP_ORDER);
  assert.equal(BigInt(`0x${pb["w0s"]}`) % GROUP_ORDER, BigInt(`0x${pb["w0"]}`));
  assert.equal(BigInt(`0x${pb["w1s"]}`) % GROUP_ORDER, BigInt(`0x${pb["w1"]}`));
  const salt = Buffer.from(pb["salt"] as string, "hex");
  const iterations = pb["iterations"] as number;
  for (const input of [pb["code_text"] as string, code]) {
    const { w0, w1 } = deriveSpakeSecrets(input, salt, iterations);
    assert.equal(encodeScalar(w0).toString("hex"), pb["w0"]);
    assert.equal(encodeScalar(w1).toString("hex"), pb["w1"]);
    assert.equal(computeVerifier(w0, w1).L.toString("hex"), pb["L"]);
  }
});

function exchange(
  proverCode: string,
  verifierCode: string,
  salt: Uint8Array,
  random: Random,
  proverIds: SpakeIdentities,
  verifierIds: SpakeIdentities = proverIds,
): { pro: ProverResult; ver: VerifierResult } {
  const secrets = deriveSpakeSecrets(verifierCode, salt, 1);
  const record = computeVerifier(secrets.w0, secrets.w1);
  const stored = { w0: decodeScalar(encodeScalar(record.w0)), L: record.L };
  const device = deriveSpakeSecrets(proverCode, salt, 1);
  const start = proverStart(device.w0, random);
  const ver = verifierRespond(stored, start.shareP, verifierIds, random);
  const pro = proverFinish({ ...device, ...start }, ver.shareV, proverIds);
  return { pro, ver };
}

const ids: SpakeIdentities = {
  context: Buffer.concat([Buffer.from("palyra-pairing-v1"), Buffer.alloc(32, 1)]),
  idProver: "01JD7Z4Q9V8K3M2N1P0R5S6T7W",
  idVerifier: "palyra-gateway:abcdef",
};

test("property: the right code always confirms both ways with equal keys; a wrong code never confirms", () => {
  const random = new SeededRandom("spake2plus-property");
  for (let i = 0; i < 50; i++) {
    const salt = random.bytes(16);
    const code =
      i % 2 === 0
        ? String(random.bytes(4).readUInt32BE(0) % 1_000_000).padStart(6, "0")
        : random.bytes(16).toString("base64url");
    const right = exchange(code, code, salt, random, ids);
    assert.ok(verifyConfirmation(right.pro.expectedConfirmV, right.ver.confirmV));
    assert.ok(verifyConfirmation(right.ver.expectedConfirmP, right.pro.confirmP));
    assert.deepEqual(right.pro.kShared, right.ver.kShared);
    assert.deepEqual(right.pro.kMain, right.ver.kMain);
    assert.equal(comparisonCode(right.pro.kShared), comparisonCode(right.ver.kShared));

    // Wrong codes: a near miss (last character changed) and an unrelated one.
    const last = code.at(-1) === "0" ? "1" : "0";
    for (const wrongCode of [code.slice(0, -1) + last, `x${code}`]) {
      const wrong = exchange(wrongCode, code, salt, random, ids);
      assert.equal(verifyConfirmation(wrong.pro.expectedConfirmV, wrong.ver.confirmV), false);
      assert.equal(verifyConfirmation(wrong.ver.expectedConfirmP, wrong.pro.confirmP), false);
      assert.notDeepEqual(wrong.pro.kShared, wrong.ver.kShared);
      assert.throws(() => assertConfirmation(wrong.ver.expectedConfirmP, wrong.pro.confirmP), {
        code: "confirmation_failed",
      });
    }
  }
});

test("a different context, idProver or idVerifier makes both confirmations mismatch", () => {
  const random = new SeededRandom("spake2plus-binding");
  const salt = random.bytes(16);
  const changes: Partial<SpakeIdentities>[] = [
    { context: Buffer.concat([Buffer.from("palyra-pairing-v1"), Buffer.alloc(32, 2)]) },
    { context: "" },
    { idProver: "01JD7Z4Q9V8K3M2N1P0R5S6T7X" },
    { idVerifier: "palyra-gateway:abcdee" },
    { idProver: "", idVerifier: "" },
  ];
  for (const change of changes) {
    const { pro, ver } = exchange("482193", "482193", salt, random, { ...ids, ...change }, ids);
    assert.equal(verifyConfirmation(pro.expectedConfirmV, ver.confirmV), false);
    assert.equal(verifyConfirmation(ver.expectedConfirmP, pro.confirmP), false);
    assert.notDeepEqual(pro.kShared, ver.kShared);
  }
  // Field boundaries matter: moving a byte from idProver to idVerifier changes the transcript.
  const shifted = exchange(
    "482193",
    "482193",
    salt,
    random,
    { ...ids, idProver: "ab", idVerifier: "c" },
    {
      ...ids,
      idProver: "a",
      idVerifier: "bc",
    },
  );
  assert.equal(verifyConfirmation(shifted.pro.expectedConfirmV, shifted.ver.confirmV), false);
});

const G = Buffer.from(Point.BASE.toBytes(false));
function invalidShares(): Array<[string, unknown]> {
  const offCurve = Buffer.from(G);
  offCurve[64] = (offCurve[64] as number) ^ 1;
  const xTooBig = Buffer.concat([Buffer.of(4), Buffer.alloc(64, 0xff)]);
  const hybrid = Buffer.from(G);
  hybrid[0] = 0x06 | ((G[64] as number) & 1);
  return [
    ["identity (04 || zeros)", Buffer.concat([Buffer.of(4), Buffer.alloc(64)])],
    ["identity (00)", Buffer.of(0)],
    ["65 zero bytes", Buffer.alloc(65)],
    ["off the curve", offCurve],
    ["coordinates >= p", xTooBig],
    ["truncated", G.subarray(0, 64)],
    ["one byte too long", Buffer.concat([G, Buffer.of(0)])],
    ["compressed", Buffer.from(Point.BASE.toBytes(true))],
    ["hybrid", hybrid],
    ["empty", Buffer.alloc(0)],
    ["a hex string", G.toString("hex")],
    ["a plain array", [...G]],
    ["null", null],
  ];
}

function assertInvalidPoint(fn: () => unknown, label: string): void {
  assert.throws(fn, (err: unknown) => err instanceof CryptoError && err.code === "invalid_point", label);
}

test("invalid shares and verifier points are rejected as invalid_point on both sides", () => {
  const random = new SeededRandom("spake2plus-invalid");
  const start = proverStart(big("w0"), random);
  const state = { w0: big("w0"), w1: big("w1"), ...start };
  for (const [label, share] of invalidShares()) {
    assertInvalidPoint(
      () => verifierRespond(rfcVerifier(), share as Uint8Array, rfcIds, random),
      `shareP ${label}`,
    );
    assertInvalidPoint(() => proverFinish(state, share as Uint8Array, rfcIds), `shareV ${label}`);
    assertInvalidPoint(
      () => verifierRespond({ w0: big("w0"), L: share as Uint8Array }, start.shareP, rfcIds, random),
      `L ${label}`,
    );
  }
  // A share that cancels w0*M (only someone who knows w0 can make it) would make Z the identity.
  const cancelling = Buffer.from(M.multiply(big("w0")).toBytes(false));
  assertInvalidPoint(() => verifierRespond(rfcVerifier(), cancelling, rfcIds, random), "shareP = w0*M");
  const cancellingV = Buffer.from(N.multiply(big("w0")).toBytes(false));
  assertInvalidPoint(() => proverFinish(state, cancellingV, rfcIds), "shareV = w0*N");
});

test("fuzz: random bytes and bit flips as shares never crash (invalid_point or a failed confirmation)", () => {
  const random = new SeededRandom("spake2plus-fuzz");
  const start = proverStart(big("w0"), random);
  const state = { w0: big("w0"), w1: big("w1"), ...start };
  const honest = verifierRespond(rfcVerifier(), start.shareP, rfcIds, random);
  const candidates: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const length = [65, 65, 33, 64, 66, i % 100][i % 6] as number;
    const bytes = random.bytes(length);
    if (i % 3 === 0 && length > 0) bytes[0] = 4;
    candidates.push(bytes);
  }
  for (let i = 1; i <= 20; i++)
    candidates.push(Buffer.from(Point.BASE.multiply(BigInt(i) * 7919n).toBytes(false)));
  for (let bit = 0; bit < 65 * 8; bit += 3) {
    const flipped = Buffer.from(honest.shareV);
    flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
    candidates.push(flipped);
  }
  for (const share of candidates) {
    for (const run of [
      () => proverFinish(state, share, rfcIds).expectedConfirmV,
      () => verifierRespond(rfcVerifier(), share, rfcIds, random).expectedConfirmP,
    ]) {
      try {
        const expected = run();
        assert.equal(verifyConfirmation(expected, honest.confirmV), false);
      } catch (err) {
        assert.ok(err instanceof CryptoError && err.code === "invalid_point", String(err));
      }
    }
  }
});

test("ephemeral scalars: rejection sampling over [1, n-1], and a broken Random is refused", () => {
  const x = hex("x");
  const tooBig = Buffer.alloc(32, 0xff);
  const order = Buffer.from(GROUP_ORDER.toString(16), "hex");
  const start = proverStart(big("w0"), new ScriptedRandom(tooBig, Buffer.alloc(32), order, x));
  assert.equal(start.x, big("x"));
  assert.equal(start.shareP.toString("hex"), v["shareP"]);
  assert.throws(() => proverStart(big("w0"), { bytes: (n) => Buffer.alloc(n) }), /broken RNG/);
  assert.throws(() => proverStart(big("w0"), { bytes: () => Buffer.alloc(31) }), TypeError);
  // Two exchanges with a real Random draw different shares.
  const random = new SeededRandom("two");
  assert.notDeepEqual(proverStart(1n, random).shareP, proverStart(1n, random).shareP);
});

test("inputs are asserted at the boundary", () => {
  const salt = Buffer.alloc(16, 9);
  for (const iterations of [0, -1, 1.5, Number.NaN, 10_000_001])
    assert.throws(() => deriveSpakeSecrets("482193", salt, iterations), RangeError);
  assert.throws(() => deriveSpakeSecrets("482193", Buffer.alloc(15), 1), RangeError);
  assert.throws(() => deriveSpakeSecrets("", salt, 1), RangeError);
  assert.throws(() => deriveSpakeSecrets(482193 as unknown as string, salt, 1), TypeError);
  assert.throws(() => proverStart(GROUP_ORDER, new SeededRandom("s")), { code: "invalid_scalar" });
  assert.throws(() => proverStart(5 as unknown as bigint, new SeededRandom("s")), TypeError);
  assert.throws(() => computeVerifier(1n, 0n), { code: "invalid_scalar" });
  const start = proverStart(big("w0"), new SeededRandom("s"));
  assert.throws(
    () => proverFinish({ w0: big("w0"), w1: big("w1"), ...start, x: 0n }, hex("shareV"), rfcIds),
    {
      code: "invalid_scalar",
    },
  );
  assert.throws(
    () =>
      proverFinish({ w0: big("w0"), w1: big("w1"), ...start }, hex("shareV"), {
        ...rfcIds,
        context: 1 as never,
      }),
    TypeError,
  );
  assert.throws(() => comparisonCode(Buffer.alloc(31)), RangeError);
  assert.equal(verifyConfirmation(Buffer.alloc(32), Buffer.alloc(31)), false);
  assert.equal(verifyConfirmation(Buffer.alloc(32), "x" as never), false);
  // w0 = 0 is a legal (if astronomically unlikely) PBKDF output and still works end to end.
  const zero = computeVerifier(0n, 7n);
  const s = proverStart(0n, new SeededRandom("zero"));
  const ver = verifierRespond(zero, s.shareP, ids, new SeededRandom("zero-v"));
  const pro = proverFinish({ w0: 0n, w1: 7n, ...s }, ver.shareV, ids);
  assert.ok(verifyConfirmation(pro.expectedConfirmV, ver.confirmV));
});

test("comparison code: 6 zero-padded digits, spread over the range", () => {
  const random = new SeededRandom("comparison");
  const seen = new Set<string>();
  let small = 0;
  for (let i = 0; i < 2000; i++) {
    const code = comparisonCode(random.bytes(32));
    assert.match(code, /^\d{6}$/);
    seen.add(code);
    if (code.startsWith("0")) small++;
  }
  assert.ok(seen.size > 1990);
  assert.ok(small > 120 && small < 290, `about a tenth start with 0 (got ${small})`);
  assert.equal(comparisonCode(Buffer.alloc(32, 1)), comparisonCode(Buffer.alloc(32, 1)));
});
