import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, webcrypto, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { newId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import { SeededRandom } from "../common/random.js";
import { CertificateAuthority, type IssuedCertificate } from "./ca.js";
import { ipAddressBytes } from "./certificate-der.js";
import { clientProfile, keyIdentifier, type LeafProfile, serverProfile } from "./certificate-profiles.js";
import { certificateSubjectDer } from "./certificate-template.js";
import { createCsr, generateP256KeyPair } from "./csr.js";
import { derBytes, readDerChildren, readDerElement } from "./der-reader.js";
import { ECDSA_SHA256, P256_KEY_PARAMS, x509 } from "./x509-setup.js";

/**
 * The DER fast path (certificate-template.ts) against the @peculiar/x509 path the CA used before:
 * for the same serial, key, names and dates, the TBSCertificate must be byte for byte the same, and
 * OpenSSL and Node must accept the result as issued by the CA.
 */

const HOUR = 3_600_000;
const dir = mkdtempSync(join(tmpdir(), "palyra-template-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function setup(start: number) {
  const clock = new ManualClock(start);
  const ca = await CertificateAuthority.create({ clock, random: new SeededRandom(`template-${start}`) });
  const caKey = createPrivateKey(ca.exportMaterial().keyPem.expose());
  const signingKey = await webcrypto.subtle.importKey(
    "pkcs8",
    caKey.export({ type: "pkcs8", format: "der" }),
    P256_KEY_PARAMS,
    false,
    ["sign"],
  );
  const caCert = new x509.X509Certificate(new Uint8Array(ca.certDer).buffer);
  const device = generateP256KeyPair();
  const csr = await createCsr(device.privateKey, device.publicKey);
  const spkiDer = device.publicKey.export({ type: "spki", format: "der" });
  /** What CertificateAuthority#issue did with @peculiar/x509 before the fast path. */
  const reference = async (issued: IssuedCertificate, profile: LeafProfile, lifetimeMs: number) => {
    const now = clock.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: issued.serialHex,
      subject: profile.subject,
      issuer: caCert.subjectName,
      notBefore: new Date(now - limits.certificateBackdateMs),
      notAfter: new Date(now + lifetimeMs),
      publicKey: spkiDer,
      signingKey: signingKey as never,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        ...profile.extensions,
        new x509.SubjectKeyIdentifierExtension(keyIdentifier(spkiDer)),
        new x509.AuthorityKeyIdentifierExtension(
          caCert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
        ),
      ],
    });
    return Buffer.from(cert.rawData);
  };
  return { clock, ca, csr, reference };
}

/** The TBSCertificate and signatureAlgorithm of a certificate (everything but the signature value). */
function signedPart(certDer: Uint8Array): string {
  const outer = readDerElement(certDer, 0)!;
  const [tbs, algorithm] = readDerChildren(certDer, outer, [0x30, 0x30, 0x03])!;
  return Buffer.concat([derBytes(certDer, tbs!), derBytes(certDer, algorithm!)]).toString("hex");
}

function assertValidLeaf(issued: IssuedCertificate, ca: CertificateAuthority): X509Certificate {
  const leaf = new X509Certificate(issued.der);
  assert.equal(leaf.verify(ca.publicKey), true);
  assert.equal(leaf.checkIssued(new X509Certificate(ca.certDer)), true);
  assert.equal(leaf.toString(), issued.pem);
  assert.equal(leaf.serialNumber.toLowerCase(), issued.serialHex);
  assert.equal(Date.parse(leaf.validFrom), issued.notBefore.getTime());
  assert.equal(Date.parse(leaf.validTo), issued.notAfter.getTime());
  return leaf;
}

test("client certificates: the same TBS bytes as @peculiar/x509, and valid for Node and OpenSSL", async () => {
  // Milliseconds in the clock: both paths must drop them the same way.
  const { clock, ca, csr, reference } = await setup(Date.UTC(2026, 5, 1, 12, 0, 0, 789));
  for (let i = 0; i < 3; i++) {
    const deviceId = newId(clock, new SeededRandom(`device-${i}`));
    const lifetimeMs = [24 * HOUR, 10 * 60_000, 30 * 24 * HOUR][i] as number;
    const issued = await ca.issueClientCertificate(csr, { deviceId, lifetimeMs });
    assert.equal(
      signedPart(issued.der),
      signedPart(await reference(issued, clientProfile(deviceId), lifetimeMs)),
    );
    const leaf = assertValidLeaf(issued, ca);
    assert.equal(leaf.subject, `CN=${deviceId}\nO=Palyra`);
    assert.equal(leaf.subjectAltName, `URI:urn:palyra:device:${deviceId}`);
    clock.advance(HOUR + 123);
  }

  // OpenSSL: the chain verifies for client use, and the text shows the profile.
  const deviceId = newId(clock, new SeededRandom("openssl"));
  const issued = await ca.issueClientCertificate(csr, { deviceId });
  const caPath = join(dir, "ca.pem");
  const leafPath = join(dir, "client.pem");
  writeFileSync(caPath, ca.certPem);
  writeFileSync(leafPath, issued.pem);
  const at = String(Math.floor(clock.now() / 1000));
  const run = (args: string[]) => execFileSync("openssl", args, { encoding: "utf8", stdio: "pipe" });
  assert.match(
    run(["verify", "-attime", at, "-purpose", "sslclient", "-CAfile", caPath, leafPath]),
    /client\.pem: OK/,
  );
  const text = run(["x509", "-text", "-noout", "-in", leafPath]);
  assert.match(text, new RegExp(`Subject: CN = ${deviceId}, O = Palyra\\n`));
  assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
  assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
  assert.match(text, /X509v3 Extended Key Usage: *\n\s+TLS Web Client Authentication\n/);
  assert.match(text, /X509v3 Subject Key Identifier:/);
  assert.match(text, /X509v3 Authority Key Identifier:/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
});

test("server certificates with IPv4, IPv6 and DNS names: the same TBS bytes as @peculiar/x509", async () => {
  const { ca, csr, reference } = await setup(Date.UTC(2026, 0, 2, 3, 4, 5, 6));
  const names = {
    dnsNames: ["gw.example.com", "a-b.internal"],
    ipAddresses: ["10.1.2.3", "fe80::1", "2001:db8:0:1:2:3:4:5", "::ffff:192.0.2.1", "1::"],
  };
  const issued = await ca.issueServerCertificate(csr, names);
  const expected = await reference(issued, serverProfile(names), limits.serverCertificateLifetimeMs);
  assert.equal(signedPart(issued.der), signedPart(expected));
  const leaf = assertValidLeaf(issued, ca);
  assert.match(leaf.subjectAltName ?? "", /DNS:localhost, DNS:palyra-gateway, DNS:gw\.example\.com/);
  assert.match(leaf.subjectAltName ?? "", /IP Address:FE80:0:0:0:0:0:0:1/);
});

test("validity from 2050 on is GeneralizedTime, before it UTCTime, as @peculiar/x509 wrote them", async () => {
  const { clock, ca, csr, reference } = await setup(Date.UTC(2045, 0, 1));
  clock.set(Date.UTC(2049, 11, 31, 12, 0, 0, 500));
  const deviceId = newId(clock, new SeededRandom("y2050"));
  const issued = await ca.issueClientCertificate(csr, { deviceId });
  assert.equal(
    signedPart(issued.der),
    signedPart(await reference(issued, clientProfile(deviceId), 24 * HOUR)),
  );
  const hex = issued.der.toString("hex");
  assert.ok(hex.includes(Buffer.from("491231115500Z").toString("hex"))); // notBefore: UTCTime
  assert.ok(hex.includes(Buffer.from("20500101120000Z").toString("hex"))); // notAfter: GeneralizedTime
  assertValidLeaf(issued, ca);
});

test("certificateSubjectDer reads the subject as encoded; anything else is a RangeError", async () => {
  const { ca } = await setup(Date.UTC(2026, 0, 1));
  const subject = certificateSubjectDer(ca.certDer);
  const caCert = new x509.X509Certificate(new Uint8Array(ca.certDer).buffer);
  assert.deepEqual(subject, Buffer.from(caCert.subjectName.toArrayBuffer()));
  for (const bad of [Buffer.alloc(0), Buffer.from("3000", "hex"), ca.certDer.subarray(0, 100)])
    assert.throws(() => certificateSubjectDer(bad), RangeError);
});

test("ipAddressBytes: IPv4, compressed IPv6 and embedded IPv4; refuses zones and names", () => {
  const hex = (a: string) => ipAddressBytes(a).toString("hex");
  assert.equal(hex("127.0.0.1"), "7f000001");
  assert.equal(hex("::1"), `${"0".repeat(30)}01`);
  assert.equal(hex("::"), "0".repeat(32));
  assert.equal(hex("1::"), `0001${"0".repeat(28)}`);
  assert.equal(hex("fe80::1:2"), `fe80${"0".repeat(20)}00010002`);
  assert.equal(hex("::ffff:192.0.2.1"), `${"0".repeat(20)}ffffc0000201`);
  assert.equal(hex("2001:db8:0:1:2:3:4:5"), "20010db8000000010002000300040005");
  for (const bad of ["fe80::1%eth0", "localhost", "1.2.3", "[::1]", ""])
    assert.throws(() => ipAddressBytes(bad), RangeError, bad);
});
