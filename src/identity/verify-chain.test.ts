import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { newId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import { SeededRandom } from "../common/random.js";
import { CertificateAuthority } from "./ca.js";
import { createCsr, generateP256KeyPair } from "./csr.js";
import { verifyIssuedBy } from "./verify-chain.js";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

async function setup() {
  const clock = new ManualClock(Date.UTC(2021, 2, 1));
  const random = new SeededRandom("verify-chain");
  const ca = await CertificateAuthority.create({ clock, random });
  const keys = generateP256KeyPair();
  const csr = await createCsr(keys.privateKey, keys.publicKey);
  const client = await ca.issueClientCertificate(csr, { deviceId: newId(clock, random) });
  const server = await ca.issueServerCertificate(csr);
  return { clock, random, ca, csr, client, server };
}

function reasonOf(result: ReturnType<typeof verifyIssuedBy>): string {
  return result.ok ? "ok" : result.reason;
}

test("a leaf from the CA verifies inside its validity window, with the right purpose", async () => {
  const { ca, clock, client, server } = await setup();
  const now = clock.now();
  assert.deepEqual(verifyIssuedBy(client.der, ca.certDer, now), { ok: true });
  assert.deepEqual(verifyIssuedBy(server.der, ca.certDer, now, { purpose: "server" }), { ok: true });
  assert.deepEqual(verifyIssuedBy(client.der, ca.certDer, now, { purpose: "client" }), { ok: true });
  // Inclusive at both ends (backdated start, notAfter).
  assert.equal(reasonOf(verifyIssuedBy(client.der, ca.certDer, now - limits.certificateBackdateMs)), "ok");
  assert.equal(reasonOf(verifyIssuedBy(client.der, ca.certDer, now + DAY)), "ok");
});

test("time window: not yet valid before the backdated start, expired after notAfter", async () => {
  const { ca, clock, client } = await setup();
  const early = verifyIssuedBy(client.der, ca.certDer, clock.now() - 6 * MINUTE);
  assert.equal(reasonOf(early), "not_yet_valid");
  assert.ok(!early.ok && /not valid before/.test(early.detail));
  const late = verifyIssuedBy(client.der, ca.certDer, clock.now() + DAY + 1000);
  assert.equal(reasonOf(late), "expired");
});

test("wrong purpose, another CA, a CA as leaf, a tampered signature and junk are refused with reasons", async () => {
  const { ca, clock, csr, client, server } = await setup();
  const now = clock.now();
  assert.equal(reasonOf(verifyIssuedBy(client.der, ca.certDer, now, { purpose: "server" })), "wrong_purpose");
  assert.equal(reasonOf(verifyIssuedBy(server.der, ca.certDer, now, { purpose: "client" })), "wrong_purpose");

  const other = await CertificateAuthority.create({ clock, random: new SeededRandom("other") });
  const foreign = await other.issueServerCertificate(csr);
  assert.equal(reasonOf(verifyIssuedBy(foreign.der, ca.certDer, now)), "not_issued_by_ca");
  assert.equal(reasonOf(verifyIssuedBy(ca.certDer, ca.certDer, now)), "leaf_is_ca");
  assert.equal(reasonOf(verifyIssuedBy(client.der, client.der, now)), "ca_not_a_ca");

  // Change one bit of the serial: same issuer and AKI, but the signature no longer covers the content.
  const tampered = Buffer.from(client.der);
  const at = tampered.indexOf(Buffer.from(client.serialHex, "hex"));
  assert.ok(at > 0);
  tampered[at + 15] = (tampered[at + 15] as number) ^ 1;
  assert.equal(reasonOf(verifyIssuedBy(tampered, ca.certDer, now)), "bad_signature");

  assert.equal(reasonOf(verifyIssuedBy(Buffer.from("junk"), ca.certDer, now)), "malformed");
  assert.equal(reasonOf(verifyIssuedBy(client.der, Buffer.alloc(0), now)), "malformed");
  assert.equal(
    reasonOf(verifyIssuedBy(Buffer.alloc(limits.maxCertificateBytes + 1), ca.certDer, now)),
    "malformed",
  );
  assert.equal(reasonOf(verifyIssuedBy(client.der, ca.certDer, Number.NaN)), "malformed");
});

test("a leaf is refused at a time when its CA certificate is not valid (ca_not_valid)", async () => {
  const { ca, clock, client } = await setup();
  // Re-certify the same CA key and name with openssl, valid only from the real now for one day. Our
  // leaf (issued at the manual clock's time, in the past) still chains by name and key identifier.
  const dir = mkdtempSync(join(tmpdir(), "palyra-verify-"));
  try {
    writeFileSync(join(dir, "ca.key"), ca.exportMaterial().keyPem.expose());
    execFileSync(
      "/usr/bin/openssl",
      [
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        `/${ca.subject}`,
        "-days",
        "1",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "subjectKeyIdentifier=hash",
        "-outform",
        "DER",
        "-out",
        "ca.der",
      ],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
    );
    const shortCa = readFileSync(join(dir, "ca.der"));
    assert.ok(clock.now() < Date.now() - DAY, "the manual clock must be well before the real time");
    assert.equal(reasonOf(verifyIssuedBy(client.der, shortCa, clock.now())), "ca_not_valid");
    assert.equal(reasonOf(verifyIssuedBy(client.der, ca.certDer, clock.now())), "ok");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fuzz: corrupted certificates never throw", async () => {
  const { ca, clock, client } = await setup();
  const random = new SeededRandom("verify-fuzz");
  for (let i = 0; i < 300; i++) {
    const input = Buffer.from(client.der);
    const at = random.bytes(2).readUInt16BE(0) % input.length;
    input[at] = random.bytes(1)[0] as number;
    const result = verifyIssuedBy(
      input.subarray(0, i % 7 === 0 ? at : input.length),
      ca.certDer,
      clock.now(),
    );
    assert.equal(typeof result.ok, "boolean");
  }
});
