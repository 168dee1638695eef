import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { limits } from "../common/limits.js";
import { SeededRandom } from "../common/random.js";
import { spkiFingerprint } from "../crypto/fingerprint.js";
import {
  createCsr,
  csrFromPem,
  csrToPem,
  generateP256KeyPair,
  isSingleDerSequence,
  parseAndVerifyCsr,
} from "./csr.js";
import { IdentityError } from "./errors.js";

const OPENSSL = "/usr/bin/openssl";
const dir = mkdtempSync(join(tmpdir(), "palyra-csr-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[]): string {
  return execFileSync(OPENSSL, args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Makes a key with `genpkey` arguments and a DER CSR for it with `openssl req`. */
function opensslCsr(name: string, keyArgs: string[], reqArgs: string[] = []): Buffer {
  openssl(["genpkey", ...keyArgs, "-out", `${name}.key`]);
  openssl([
    "req",
    "-new",
    "-key",
    `${name}.key`,
    "-subj",
    "/CN=openssl",
    ...reqArgs,
    "-outform",
    "DER",
    "-out",
    `${name}.csr`,
  ]);
  return readFileSync(join(dir, `${name}.csr`));
}

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof IdentityError, `expected an IdentityError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test("createCsr makes a DER PKCS#10 that openssl verifies and parseAndVerifyCsr accepts", async () => {
  const { privateKey, publicKey } = generateP256KeyPair();
  const der = await createCsr(privateKey, publicKey, "CN=device-one");
  assert.ok(isSingleDerSequence(der));
  const text = execFileSync(OPENSSL, ["req", "-inform", "DER", "-noout", "-text", "-verify"], {
    input: der,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
  });
  assert.match(text, /Subject: CN = device-one/);
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);

  const verified = await parseAndVerifyCsr(der);
  assert.ok(verified.publicKey.equals(publicKey));
  assert.deepEqual(verified.spkiDer, publicKey.export({ type: "spki", format: "der" }));
  assert.equal(verified.keyFingerprint, spkiFingerprint(publicKey));
  assert.match(verified.keyFingerprint, /^[0-9a-f]{64}$/);
});

test("an openssl-made P-256 CSR is accepted, whatever subject and extensions it asks for", async () => {
  const der = opensslCsr(
    "p256",
    ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "subjectAltName=DNS:evil.example"],
  );
  const verified = await parseAndVerifyCsr(der);
  const expected = createPublicKey(createPrivateKey(readFileSync(join(dir, "p256.key"))));
  assert.ok(verified.publicKey.equals(expected));
  // Signed with ECDSA-SHA384 instead of SHA-256: still a valid proof of possession.
  openssl([
    "req",
    "-new",
    "-sha384",
    "-key",
    "p256.key",
    "-subj",
    "/CN=x",
    "-outform",
    "DER",
    "-out",
    "sha384.csr",
  ]);
  const sha384 = readFileSync(join(dir, "sha384.csr"));
  assert.match(
    openssl(["req", "-inform", "DER", "-in", "sha384.csr", "-noout", "-text"]),
    /ecdsa-with-SHA384/,
  );
  assert.ok((await parseAndVerifyCsr(sha384)).publicKey.equals(expected));
});

test("CSRs for RSA, P-384 and Ed25519 keys are refused as unsupported_key", async () => {
  await rejectsWith(
    parseAndVerifyCsr(opensslCsr("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])),
    "unsupported_key",
    /rsa 2048-bit/,
  );
  await rejectsWith(
    parseAndVerifyCsr(opensslCsr("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"])),
    "unsupported_key",
    /secp384r1/,
  );
  await rejectsWith(
    parseAndVerifyCsr(opensslCsr("ed25519", ["-algorithm", "ED25519"])),
    "unsupported_key",
    /ed25519/,
  );
});

test("a CSR whose signed content was changed is refused as invalid_csr", async () => {
  const { privateKey, publicKey } = generateP256KeyPair();
  const der = await createCsr(privateKey, publicKey, "CN=aaaaaaaa");
  const at = der.indexOf("aaaaaaaa");
  assert.ok(at > 0);
  const tampered = Buffer.from(der);
  tampered.write("bbbbbbbb", at, "latin1");
  await rejectsWith(parseAndVerifyCsr(tampered), "invalid_csr", /signature does not verify/);
  // A CSR signed by another key than the one it names.
  const other = generateP256KeyPair();
  const otherDer = await createCsr(other.privateKey, other.publicKey, "CN=aaaaaaaa");
  const spkiAt = otherDer.indexOf(other.publicKey.export({ type: "spki", format: "der" }));
  const swapped = Buffer.from(otherDer);
  publicKey.export({ type: "spki", format: "der" }).copy(swapped, spkiAt);
  await rejectsWith(parseAndVerifyCsr(swapped), "invalid_csr", /signature does not verify/);
});

test("garbage, empty, truncated, padded, oversize and non-CSR inputs are refused as invalid_csr", async () => {
  const { privateKey, publicKey } = generateP256KeyPair();
  const der = await createCsr(privateKey, publicKey);
  const random = new SeededRandom("csr-garbage");
  await rejectsWith(parseAndVerifyCsr(random.bytes(300)), "invalid_csr");
  await rejectsWith(parseAndVerifyCsr(Buffer.alloc(0)), "invalid_csr", /empty/);
  await rejectsWith(parseAndVerifyCsr(der.subarray(0, der.length - 1)), "invalid_csr", /DER/);
  await rejectsWith(parseAndVerifyCsr(Buffer.concat([der, Buffer.of(0)])), "invalid_csr", /DER/);
  await rejectsWith(
    parseAndVerifyCsr(Buffer.alloc(limits.maxCsrBytes + 1, 0x30)),
    "invalid_csr",
    /larger than/,
  );
  // A well-framed DER SEQUENCE that is not a CSR.
  await rejectsWith(parseAndVerifyCsr(Buffer.from("3003020101", "hex")), "invalid_csr");
  // A string where bytes belong (JavaScript callers).
  await rejectsWith(parseAndVerifyCsr(csrToPem(der) as unknown as Uint8Array), "invalid_csr", /DER bytes/);
});

test("fuzz: mutated and truncated CSRs give an IdentityError or a verified P-256 key, never a crash", async () => {
  const { privateKey, publicKey } = generateP256KeyPair();
  const der = await createCsr(privateKey, publicKey, "CN=fuzz");
  const random = new SeededRandom("csr-fuzz");
  let refused = 0;
  for (let i = 0; i < 400; i++) {
    const input = Buffer.from(der);
    const mutations = 1 + ((random.bytes(1)[0] as number) % 4);
    for (let m = 0; m < mutations; m++) {
      const at = random.bytes(2).readUInt16BE(0) % input.length;
      input[at] = random.bytes(1)[0] as number;
    }
    const cut = i % 5 === 0 ? random.bytes(2).readUInt16BE(0) % input.length : input.length;
    try {
      const verified = await parseAndVerifyCsr(input.subarray(0, cut));
      assert.equal(verified.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    } catch (err) {
      assert.ok(err instanceof IdentityError, `unexpected ${String(err)}`);
      assert.ok(["invalid_csr", "unsupported_key"].includes(err.code), err.code);
      refused++;
    }
  }
  assert.ok(refused > 300, `only ${refused} of 400 mutations were refused`);
});

test("csrFromPem accepts both PEM labels and refuses junk", async () => {
  const { privateKey, publicKey } = generateP256KeyPair();
  const der = await createCsr(privateKey, publicKey);
  const pem = csrToPem(der);
  assert.match(pem, /^-----BEGIN CERTIFICATE REQUEST-----\r?\n/);
  assert.deepEqual(csrFromPem(pem), der);
  assert.deepEqual(csrFromPem(`junk before\n${pem.replace(/\r/g, "")}\njunk after`), der);
  assert.deepEqual(csrFromPem(pem.replace(/CERTIFICATE REQUEST/g, "NEW CERTIFICATE REQUEST")), der);
  assert.deepEqual(
    await parseAndVerifyCsr(csrFromPem(pem)).then((v) => v.keyFingerprint),
    spkiFingerprint(publicKey),
  );

  const refuse = (input: string, message: RegExp) =>
    assert.throws(
      () => csrFromPem(input),
      (err: unknown) =>
        err instanceof IdentityError && err.code === "invalid_csr" && message.test(err.message),
    );
  refuse("", /exactly one/);
  refuse(pem + pem, /exactly one/);
  refuse("-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----", /base64/);
  refuse(pem.replace("END CERTIFICATE", "END NEW CERTIFICATE"), /labels differ/);
  refuse("x".repeat(limits.maxCsrBytes * 3), /longer than/);
  refuse(
    `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.alloc(limits.maxCsrBytes + 3).toString("base64")}\n-----END CERTIFICATE REQUEST-----`,
    /larger than/,
  );
});

test("createCsr refuses keys that are not a matching P-256 pair", async () => {
  const a = generateP256KeyPair();
  const b = generateP256KeyPair();
  await rejectsWith(createCsr(a.privateKey, b.publicKey), "invalid_key", /does not belong/);
  await rejectsWith(createCsr(a.publicKey, a.publicKey), "invalid_key");
  const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  await rejectsWith(createCsr(p384.privateKey, p384.publicKey), "unsupported_key");
  await rejectsWith(createCsr(a.privateKey, a.publicKey, "not a DN"), "invalid_csr", /distinguished name/);
});
