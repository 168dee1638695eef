import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createSecureContext } from "node:tls";
import { inspect } from "node:util";
import { ManualClock } from "../common/clock.js";
import { newId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import { SeededRandom } from "../common/random.js";
import { certificateFingerprint, spkiFingerprint } from "../crypto/fingerprint.js";
import { CertificateAuthority, randomSerialHex } from "./ca.js";
import { createCsr, generateP256KeyPair } from "./csr.js";
import { IdentityError } from "./errors.js";

const OPENSSL = "/usr/bin/openssl";
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const START = Date.UTC(2026, 0, 1, 12, 0, 0);

const dir = mkdtempSync(join(tmpdir(), "palyra-ca-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;

/** Writes `content` to a fresh temp file and returns its path. */
function tempFile(content: string | Uint8Array, suffix = ".pem"): string {
  const path = join(dir, `f${fileCounter++}${suffix}`);
  writeFileSync(path, content);
  return path;
}

/** Runs openssl; returns stdout and stderr together (verify prints OK on stdout, crl on stderr). */
function openssl(args: string[]): string {
  return execFileSync(OPENSSL, args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function opensslFails(args: string[]): string {
  try {
    execFileSync(OPENSSL, args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ""}${e.stderr ?? ""}`;
  }
  assert.fail(`openssl ${args.join(" ")} unexpectedly succeeded`);
}

const certText = (pem: string) => openssl(["x509", "-text", "-noout", "-in", tempFile(pem)]);

/** The hex of an openssl "X509v3 <name>:" extension block (SKI/AKI), colon-free and lower-case. */
function keyIdLine(text: string, extension: string): string {
  const match = new RegExp(`X509v3 ${extension}: *\\n\\s+(?:keyid:)?([0-9A-F:]+)`).exec(text);
  assert.ok(match, `${extension} missing`);
  return (match[1] as string).replace(/:/g, "").toLowerCase();
}

function opensslDate(text: string, which: "Not Before" | "Not After " | "Next Update"): number {
  const match = new RegExp(`${which}: (.+ GMT)`).exec(text);
  assert.ok(match, `${which} missing`);
  return Date.parse(match[1] as string);
}

function serialOf(text: string): string {
  const match = /Serial Number:\s*\n\s+([0-9a-f:]+)/.exec(text);
  assert.ok(match, "serial missing");
  return (match[1] as string).replace(/:/g, "");
}

async function setup(seed = "ca-test", start = START) {
  const clock = new ManualClock(start);
  const random = new SeededRandom(seed);
  const ca = await CertificateAuthority.create({ clock, random });
  const device = generateP256KeyPair();
  const csr = await createCsr(device.privateKey, device.publicKey, "CN=whatever");
  const deviceId = newId(clock, random);
  return { clock, random, ca, device, csr, deviceId };
}

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof IdentityError, `expected an IdentityError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test("CA profile (openssl x509 -text): CA:TRUE pathlen:0 critical, KU critical, SKI, P-256, subject, 10 years", async () => {
  const { ca, clock } = await setup();
  const text = certText(ca.certPem);
  assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
  assert.match(text, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
  assert.match(keyIdLine(text, "Subject Key Identifier"), /^[0-9a-f]{40}$/);
  assert.match(text, /Public Key Algorithm: id-ecPublicKey/);
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  const cn = `Palyra Gateway CA ${ca.spkiFingerprint.slice(0, 8)}`;
  assert.match(ca.spkiFingerprint, /^[0-9a-f]{64}$/);
  assert.match(text, new RegExp(`Subject: CN = ${cn}\\n`));
  assert.match(text, new RegExp(`Issuer: CN = ${cn}\\n`));
  assert.equal(ca.subject, `CN=${cn}`);
  assert.equal(serialOf(text).length, 32);

  const notBefore = opensslDate(text, "Not Before");
  const notAfter = opensslDate(text, "Not After ");
  assert.equal(notBefore, clock.now() - limits.certificateBackdateMs);
  assert.equal(notAfter, clock.now() + limits.caLifetimeMs);
  assert.equal(limits.caLifetimeMs, 3650 * DAY);
  assert.equal(ca.notBefore.getTime(), notBefore);
  assert.equal(ca.notAfter.getTime(), notAfter);

  assert.match(ca.certPem, /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+\n-----END CERTIFICATE-----\n$/);
  const node = new X509Certificate(ca.certDer);
  assert.equal(node.ca, true);
  assert.equal(ca.fingerprint, certificateFingerprint(ca.certDer));
  assert.equal(ca.fingerprint, node.fingerprint256.replace(/:/g, "").toLowerCase());
  assert.equal(node.checkIssued(node), true);
  assert.equal(node.verify(node.publicKey), true);
});

test("client leaf profile: clientAuth, device URI SAN, subject, CA:FALSE, AKI = CA SKI, 16-byte serial, backdated", async () => {
  const { ca, clock, csr, deviceId, device } = await setup();
  clock.advance(3 * HOUR);
  const issued = await ca.issueClientCertificate(csr, { deviceId });
  const text = certText(issued.pem);
  assert.match(text, /X509v3 Extended Key Usage: *\n\s+TLS Web Client Authentication\n/);
  assert.doesNotMatch(text, /TLS Web Server Authentication/);
  assert.match(
    text,
    new RegExp(`X509v3 Subject Alternative Name: *\\n\\s+URI:urn:palyra:device:${deviceId}\\n`),
  );
  assert.match(text, new RegExp(`Subject: CN = ${deviceId}, O = Palyra\\n`));
  assert.match(text, new RegExp(`Issuer: CN = Palyra Gateway CA ${ca.spkiFingerprint.slice(0, 8)}\\n`));
  assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
  assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
  assert.equal(
    keyIdLine(text, "Authority Key Identifier"),
    keyIdLine(certText(ca.certPem), "Subject Key Identifier"),
  );
  assert.match(keyIdLine(text, "Subject Key Identifier"), /^[0-9a-f]{40}$/);

  assert.equal(serialOf(text), issued.serialHex);
  assert.match(issued.serialHex, /^[0-7][0-9a-f]{31}$/);
  assert.notEqual(issued.serialHex.slice(0, 2), "00");

  assert.equal(opensslDate(text, "Not Before"), clock.now() - 5 * MINUTE);
  assert.equal(opensslDate(text, "Not After "), clock.now() + DAY);
  assert.equal(issued.notBefore.getTime(), clock.now() - 5 * MINUTE);
  assert.equal(issued.notAfter.getTime(), clock.now() + DAY);

  assert.equal(issued.fingerprint, certificateFingerprint(issued.der));
  // PEMs end with a newline, so leaf + CA concatenate into a chain that OpenSSL reads as two certificates.
  assert.match(issued.pem, /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+\n-----END CERTIFICATE-----\n$/);
  const chain = openssl(["crl2pkcs7", "-nocrl", "-certfile", tempFile(issued.pem + ca.certPem)]);
  assert.match(
    openssl(["pkcs7", "-print_certs", "-noout", "-in", tempFile(chain)]),
    /subject=CN = [0-9A-Z]{26}, O = Palyra\n[\s\S]*subject=CN = Palyra Gateway CA/,
  );
  assert.equal(issued.subjectPublicKeyFingerprint, spkiFingerprint(device.publicKey));
  const node = new X509Certificate(issued.der);
  assert.ok(node.publicKey.equals(device.publicKey));
  assert.equal(node.subjectAltName, `URI:urn:palyra:device:${deviceId}`);
  assert.equal(node.verify(ca.publicKey), true);
  assert.equal(node.checkIssued(new X509Certificate(ca.certDer)), true);
  assert.equal(node.ca, false);
  assert.deepEqual(node.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
});

test("server leaf profile: CN palyrad, DNS and IP SANs, serverAuth, AKI, 24 h", async () => {
  const { ca, clock, csr } = await setup();
  const issued = await ca.issueServerCertificate(csr, {
    dnsNames: ["gw.example.com", "Localhost"],
    ipAddresses: ["192.168.7.7", "fd00::7"],
  });
  const text = certText(issued.pem);
  assert.match(text, /Subject: CN = palyrad\n/);
  assert.match(text, /X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication\n/);
  assert.doesNotMatch(text, /TLS Web Client Authentication/);
  assert.match(
    text,
    /X509v3 Subject Alternative Name: *\n\s+DNS:localhost, DNS:palyra-gateway, DNS:gw\.example\.com, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1, IP Address:192\.168\.7\.7, IP Address:FD00:0:0:0:0:0:0:7\n/,
  );
  assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
  assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
  assert.equal(
    keyIdLine(text, "Authority Key Identifier"),
    keyIdLine(certText(ca.certPem), "Subject Key Identifier"),
  );
  assert.equal(serialOf(text).length, 32);
  assert.equal(opensslDate(text, "Not Before"), clock.now() - 5 * MINUTE);
  assert.equal(opensslDate(text, "Not After "), clock.now() + limits.serverCertificateLifetimeMs);
  assert.equal(limits.serverCertificateLifetimeMs, DAY);
});

test("openssl verify says OK for both leaves (at issue time, with the right purpose) and Node agrees", async () => {
  const { ca, clock, csr, deviceId } = await setup();
  const client = await ca.issueClientCertificate(csr, { deviceId });
  const server = await ca.issueServerCertificate(csr);
  const caFile = tempFile(ca.certPem);
  const at = String(Math.floor(clock.now() / 1000));
  for (const [leaf, purpose, wrong] of [
    [client, "sslclient", "sslserver"],
    [server, "sslserver", "sslclient"],
  ] as const) {
    const leafFile = tempFile(leaf.pem);
    const out = openssl([
      "verify",
      "-x509_strict",
      "-attime",
      at,
      "-purpose",
      purpose,
      "-CAfile",
      caFile,
      leafFile,
    ]);
    assert.equal(out.trim(), `${leafFile}: OK`);
    assert.match(
      opensslFails(["verify", "-attime", at, "-purpose", wrong, "-CAfile", caFile, leafFile]),
      /(unsuitable|unsupported) certificate purpose/,
    );
    const node = new X509Certificate(leaf.pem);
    assert.equal(node.verify(new X509Certificate(ca.certPem).publicKey), true);
    assert.equal(node.checkIssued(new X509Certificate(ca.certPem)), true);
  }
  // Past its notAfter, openssl refuses it.
  const late = String(Math.floor((clock.now() + DAY + MINUTE) / 1000));
  assert.match(
    opensslFails(["verify", "-attime", late, "-CAfile", caFile, tempFile(client.pem)]),
    /certificate has expired/,
  );
});

test("lifetimes: client default 24 h, 3 min to 30 days allowed, anything else is invalid_lifetime", async () => {
  const { ca, clock, csr, deviceId } = await setup();
  for (const lifetimeMs of [3 * MINUTE, 7 * DAY, 30 * DAY]) {
    const issued = await ca.issueClientCertificate(csr, { deviceId, lifetimeMs });
    assert.equal(issued.notAfter.getTime() - clock.now(), lifetimeMs);
  }
  for (const lifetimeMs of [
    3 * MINUTE - 1,
    30 * DAY + 1,
    0,
    -DAY,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    1.5 * HOUR + 0.5,
  ])
    await rejectsWith(ca.issueClientCertificate(csr, { deviceId, lifetimeMs }), "invalid_lifetime");
  await rejectsWith(ca.issueServerCertificate(csr, { lifetimeMs: 31 * DAY }), "invalid_lifetime");
  // A leaf may not outlive its CA.
  clock.advance(limits.caLifetimeMs - HOUR);
  await rejectsWith(ca.issueClientCertificate(csr, { deviceId }), "invalid_lifetime", /outlive the CA/);
});

test("issuance uses only the CSR's key: requested subject, CA:TRUE, SANs and EKUs are ignored", async () => {
  const { ca, clock, random } = await setup();
  const victim = newId(clock, random);
  const deviceId = newId(clock, random);
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "evil.key"]);
  openssl([
    "req",
    "-new",
    "-key",
    "evil.key",
    "-subj",
    "/CN=palyrad/O=Evil Corp",
    "-addext",
    "basicConstraints=critical,CA:TRUE,pathlen:5",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-addext",
    "extendedKeyUsage=serverAuth,clientAuth,codeSigning",
    "-addext",
    `subjectAltName=DNS:evil.example,IP:6.6.6.6,URI:urn:palyra:device:${victim}`,
    "-outform",
    "DER",
    "-out",
    "evil.csr",
  ]);
  const csr = readFileSync(join(dir, "evil.csr"));
  assert.match(openssl(["req", "-inform", "DER", "-in", "evil.csr", "-noout", "-text"]), /CA:TRUE/);

  const client = certText((await ca.issueClientCertificate(csr, { deviceId })).pem);
  const server = certText((await ca.issueServerCertificate(csr)).pem);
  for (const text of [client, server]) {
    assert.doesNotMatch(text, /CA:TRUE|Evil|evil\.example|6\.6\.6\.6|Code Signing|Certificate Sign/);
    assert.doesNotMatch(text, new RegExp(victim));
    assert.match(text, /CA:FALSE/);
  }
  assert.match(client, new RegExp(`Subject: CN = ${deviceId}, O = Palyra\\n`));
  assert.match(client, new RegExp(`URI:urn:palyra:device:${deviceId}\\n`));
  assert.match(
    server,
    /DNS:localhost, DNS:palyra-gateway, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1\n/,
  );
});

test("issuance refuses bad CSRs and bad names with clear IdentityError codes", async () => {
  const { ca, csr, deviceId } = await setup();
  await rejectsWith(ca.issueClientCertificate(Buffer.from("junk"), { deviceId }), "invalid_csr");
  const broken = Buffer.from(csr);
  const at = broken.indexOf("whatever");
  broken.write("WHATEVER", at, "latin1");
  await rejectsWith(ca.issueClientCertificate(broken, { deviceId }), "invalid_csr", /signature/);
  await rejectsWith(ca.issueClientCertificate(csr, { deviceId: "not-a-ulid" }), "invalid_san");
  await rejectsWith(ca.issueClientCertificate(csr, undefined as never), "invalid_san");
  await rejectsWith(
    ca.issueServerCertificate(csr, { dnsNames: ["*.example.com"] }),
    "invalid_san",
    /wildcard/,
  );
  await rejectsWith(ca.issueServerCertificate(csr, { ipAddresses: ["not-an-ip"] }), "invalid_san");
});

test("serials are 16 random bytes from the injected Random: positive, no leading zero byte, distinct", async () => {
  const { ca, csr, deviceId } = await setup();
  const serials = new Set<string>();
  for (let i = 0; i < 20; i++) serials.add((await ca.issueClientCertificate(csr, { deviceId })).serialHex);
  assert.equal(serials.size, 20);
  // Deterministic with a seeded Random.
  assert.equal(randomSerialHex(new SeededRandom("s")), randomSerialHex(new SeededRandom("s")));
  const zeros = { bytes: (n: number) => Buffer.alloc(n) };
  const ones = { bytes: (n: number) => Buffer.alloc(n, 0xff) };
  assert.equal(randomSerialHex(zeros), `01${"00".repeat(15)}`);
  assert.equal(randomSerialHex(ones), `7f${"ff".repeat(15)}`);
});

test("exportMaterial -> load round trip keeps the fingerprint; a mismatched key is ca_mismatch", async () => {
  const { ca, clock, csr, deviceId } = await setup();
  const material = ca.exportMaterial();
  assert.match(material.keyPem.expose(), /^-----BEGIN PRIVATE KEY-----\n/);
  const loaded = await CertificateAuthority.load(
    { certPem: material.certPem, keyPem: material.keyPem.expose() },
    { clock },
  );
  assert.equal(loaded.fingerprint, ca.fingerprint);
  assert.equal(loaded.spkiFingerprint, ca.spkiFingerprint);
  assert.equal(loaded.subject, ca.subject);
  assert.equal(loaded.notAfter.getTime(), ca.notAfter.getTime());
  // The loaded CA issues certificates that chain to the original, with the same AKI.
  const issued = await loaded.issueClientCertificate(csr, { deviceId });
  const at = String(Math.floor(clock.now() / 1000));
  assert.match(
    openssl(["verify", "-attime", at, "-CAfile", tempFile(ca.certPem), tempFile(issued.pem)]),
    /: OK\n$/,
  );

  const other = await CertificateAuthority.create({ clock, random: new SeededRandom("other") });
  const otherKey = other.exportMaterial().keyPem.expose();
  await rejectsWith(CertificateAuthority.load({ certPem: ca.certPem, keyPem: otherKey }), "ca_mismatch");
  await rejectsWith(CertificateAuthority.load({ certPem: ca.certPem, keyPem: "garbage" }), "invalid_key");
  await rejectsWith(
    CertificateAuthority.load({ certPem: "garbage", keyPem: otherKey }),
    "invalid_certificate",
  );
  await rejectsWith(CertificateAuthority.load(undefined as never), "invalid_certificate");
  // A leaf with its own key is not a CA.
  const leafKeys = generateP256KeyPair();
  const leaf = await ca.issueClientCertificate(await createCsr(leafKeys.privateKey, leafKeys.publicKey), {
    deviceId,
  });
  const leafKeyPem = leafKeys.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  await rejectsWith(
    CertificateAuthority.load({ certPem: leaf.pem, keyPem: leafKeyPem }),
    "invalid_certificate",
    /not a CA/,
  );
});

test("inspect, JSON and String of the CA and its exported material never show the private key", async () => {
  const { ca } = await setup();
  const keyPem = ca.exportMaterial().keyPem.expose();
  const keyBody = keyPem.split("\n")[1] as string;
  const shown = [
    inspect(ca),
    inspect(ca, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }),
    JSON.stringify(ca),
    String(ca),
    inspect(ca.exportMaterial(), { depth: Number.POSITIVE_INFINITY }),
    JSON.stringify(ca.exportMaterial()),
  ];
  for (const text of shown) {
    assert.doesNotMatch(text, /PRIVATE KEY/);
    assert.ok(!text.includes(keyBody));
  }
  assert.match(inspect(ca), /CertificateAuthority \{ subject: 'CN=Palyra Gateway CA [0-9a-f]{8}'/);
  assert.match(JSON.stringify(ca), new RegExp(ca.fingerprint));
});

test("CRL: X509 CRL PEM that openssl parses and verifies, listing the revoked serials", async () => {
  const { ca, clock, csr, deviceId } = await setup();
  const a = await ca.issueClientCertificate(csr, { deviceId });
  const b = await ca.issueClientCertificate(csr, { deviceId });
  const crlPem = await ca.issueCrl(
    [
      { serialHex: a.serialHex, revokedAt: new Date(clock.now()) },
      { serialHex: b.serialHex.toUpperCase(), revokedAt: new Date(clock.now() - HOUR) },
    ],
    new Date(clock.now() + DAY),
  );
  assert.match(crlPem, /^-----BEGIN X509 CRL-----\n[\s\S]+\n-----END X509 CRL-----\n$/);
  const crlFile = tempFile(crlPem);
  const text = openssl(["crl", "-text", "-noout", "-in", crlFile]);
  assert.match(text, new RegExp(`Serial Number: ${a.serialHex.toUpperCase()}\\n`));
  assert.match(text, new RegExp(`Serial Number: ${b.serialHex.toUpperCase()}\\n`));
  assert.match(text, new RegExp(`Issuer: CN = Palyra Gateway CA ${ca.spkiFingerprint.slice(0, 8)}\\n`));
  assert.match(text, /X509v3 CRL Number: *\n\s+\d+\n/);
  assert.equal(
    keyIdLine(text, "Authority Key Identifier"),
    keyIdLine(certText(ca.certPem), "Subject Key Identifier"),
  );
  assert.equal(opensslDate(text, "Next Update"), clock.now() + DAY);
  const verified = execFileSync(OPENSSL, ["crl", "-in", crlFile, "-CAfile", tempFile(ca.certPem), "-noout"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  assert.equal(verified, "");
  // Node's TLS stack loads it as a CRL.
  assert.doesNotThrow(() => createSecureContext({ ca: ca.certPem, crl: crlPem }));

  // CRL numbers increase even when the clock stands still; an empty CRL is fine.
  const number = (pem: string) =>
    BigInt(
      (
        /CRL Number: *\n\s+(\d+)/.exec(
          openssl(["crl", "-text", "-noout", "-in", tempFile(pem)]),
        ) as RegExpExecArray
      )[1] as string,
    );
  const first = await ca.issueCrl([], new Date(clock.now() + HOUR));
  const second = await ca.issueCrl([], new Date(clock.now() + HOUR));
  assert.ok(number(second) > number(first));

  await rejectsWith(ca.issueCrl([], new Date(clock.now() - 1)), "invalid_lifetime");
  await rejectsWith(
    ca.issueCrl([{ serialHex: "xyz", revokedAt: new Date() }], new Date(clock.now() + HOUR)),
    "invalid_certificate",
  );
  await rejectsWith(
    ca.issueCrl([{ serialHex: "ab", revokedAt: new Date(Number.NaN) }], new Date(clock.now() + HOUR)),
    "invalid_certificate",
  );
});
