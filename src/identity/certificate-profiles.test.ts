import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { newId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import { SeededRandom } from "../common/random.js";
import {
  caCommonName,
  clientProfile,
  DEVICE_URI_PREFIX,
  deviceIdFromUri,
  deviceUri,
  keyIdentifier,
  normalizeDnsName,
  normalizeIpAddress,
  serverAltNames,
  serverProfile,
} from "./certificate-profiles.js";
import { generateP256KeyPair } from "./csr.js";
import { IdentityError } from "./errors.js";
import { x509 } from "./x509-setup.js";

const isInvalidSan = (err: unknown) => err instanceof IdentityError && err.code === "invalid_san";

test("normalizeDnsName keeps valid host names, lower-cased, without a trailing dot", () => {
  assert.equal(normalizeDnsName("localhost"), "localhost");
  assert.equal(normalizeDnsName("Gateway.Example.COM."), "gateway.example.com");
  assert.equal(normalizeDnsName("a-b.c1.example"), "a-b.c1.example");
  assert.equal(normalizeDnsName(`${"a".repeat(63)}.example`), `${"a".repeat(63)}.example`);
});

test("normalizeDnsName refuses wildcards, IP addresses and junk with a clear invalid_san error", () => {
  assert.throws(
    () => normalizeDnsName("*.example.com"),
    (e: unknown) => isInvalidSan(e) && /wildcard/.test((e as Error).message),
  );
  assert.throws(
    () => normalizeDnsName("10.0.0.1"),
    (e: unknown) => isInvalidSan(e) && /IP address/.test((e as Error).message),
  );
  assert.throws(
    () => normalizeDnsName("[::1]"),
    (e: unknown) => isInvalidSan(e) && /IP address/.test((e as Error).message),
  );
  for (const bad of [
    "",
    ".",
    "a..b",
    "-a.example",
    "a-.example",
    "under_score.example",
    "with space",
    "host:443",
    "https://example.com",
    "a/b",
    "1.2.3",
    `${"a".repeat(64)}.example`,
    `${"abcdefghi.".repeat(26)}com`,
    "exa\u0000mple",
    "bücher.example",
  ])
    assert.throws(() => normalizeDnsName(bad), isInvalidSan, JSON.stringify(bad));
  assert.throws(() => normalizeDnsName(42 as unknown as string), isInvalidSan);
});

test("normalizeIpAddress accepts IPv4 and IPv6 (canonical form) and refuses zones, ranges and names", () => {
  assert.equal(normalizeIpAddress("10.1.2.3"), "10.1.2.3");
  assert.equal(normalizeIpAddress("::1"), "::1");
  assert.equal(normalizeIpAddress("FE80:0:0:0:0:0:0:1"), "fe80::1");
  assert.equal(normalizeIpAddress("2001:db8::0:1"), "2001:db8::1");
  for (const bad of [
    "",
    "fe80::1%eth0",
    "10.0.0.0/8",
    "10.0.0.1:80",
    "[::1]",
    "localhost",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3",
  ])
    assert.throws(() => normalizeIpAddress(bad), isInvalidSan, JSON.stringify(bad));
});

test("serverAltNames puts the defaults first and removes duplicates; too many names are refused", () => {
  assert.deepEqual(serverAltNames(), {
    dnsNames: ["localhost", "palyra-gateway"],
    ipAddresses: ["127.0.0.1", "::1"],
  });
  assert.deepEqual(
    serverAltNames({
      dnsNames: ["GW.example", "localhost", "gw.example."],
      ipAddresses: ["0:0::1", "192.168.1.2"],
    }),
    {
      dnsNames: ["localhost", "palyra-gateway", "gw.example"],
      ipAddresses: ["127.0.0.1", "::1", "192.168.1.2"],
    },
  );
  const many = Array.from({ length: limits.maxServerAltNames + 1 }, (_, i) => `h${i}.example`);
  assert.throws(() => serverAltNames({ dnsNames: many }), isInvalidSan);
  assert.throws(() => serverAltNames({ dnsNames: "gw.example" as unknown as string[] }), isInvalidSan);
});

test("server profile: CN palyrad, SANs, serverAuth, critical digitalSignature, cA=false", () => {
  const profile = serverProfile({ dnsNames: ["gw.example"], ipAddresses: ["10.0.0.1"] });
  assert.deepEqual(profile.subject, [{ CN: ["palyrad"] }]);
  const [bc, ku, eku, san] = profile.extensions as [
    x509.BasicConstraintsExtension,
    x509.KeyUsagesExtension,
    x509.ExtendedKeyUsageExtension,
    x509.SubjectAlternativeNameExtension,
  ];
  assert.equal(bc.ca, false);
  assert.equal(bc.critical, true);
  assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
  assert.equal(ku.critical, true);
  assert.deepEqual(eku.usages, [x509.ExtendedKeyUsage.serverAuth]);
  assert.deepEqual(
    san.names.toJSON().map((n) => `${n.type}:${n.value}`),
    ["dns:localhost", "dns:palyra-gateway", "dns:gw.example", "ip:127.0.0.1", "ip:::1", "ip:10.0.0.1"],
  );
});

test("client profile: CN device id, O Palyra, device URI SAN, clientAuth; device ids must be canonical", () => {
  const deviceId = newId(new ManualClock(), new SeededRandom("profile"));
  const profile = clientProfile(deviceId);
  assert.deepEqual(profile.subject, [{ CN: [deviceId] }, { O: ["Palyra"] }]);
  const eku = profile.extensions[2] as x509.ExtendedKeyUsageExtension;
  const san = profile.extensions[3] as x509.SubjectAlternativeNameExtension;
  assert.deepEqual(eku.usages, [x509.ExtendedKeyUsage.clientAuth]);
  assert.deepEqual(san.names.toJSON(), [{ type: "url", value: `urn:palyra:device:${deviceId}` }]);
  for (const bad of [
    "",
    deviceId.toLowerCase(),
    `${deviceId}X`,
    "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
    "01ARZ3NDEKTSV4RRFFQ69G5FAI",
    "../etc",
  ])
    assert.throws(() => clientProfile(bad), isInvalidSan, bad);
  assert.equal(deviceUri(deviceId), DEVICE_URI_PREFIX + deviceId);
  assert.equal(deviceIdFromUri(deviceUri(deviceId)), deviceId);
  assert.equal(deviceIdFromUri("urn:palyra:device:nope"), undefined);
  assert.equal(deviceIdFromUri(`urn:other:${deviceId}`), undefined);
});

test("caCommonName and keyIdentifier", () => {
  assert.equal(caCommonName("ab12cd34".padEnd(64, "0")), "Palyra Gateway CA ab12cd34");
  assert.throws(() => caCommonName("XYZ"), RangeError);
  const { publicKey } = generateP256KeyPair();
  const spki = publicKey.export({ type: "spki", format: "der" });
  const id = keyIdentifier(spki);
  assert.match(id, /^[0-9a-f]{40}$/);
  assert.equal(keyIdentifier(spki), id);
  // For P-256 the SPKI ends with the 65-byte uncompressed point the identifier hashes.
  assert.equal(spki.length, 91);
});

test("property: random strings never crash the name checks (valid result or invalid_san)", () => {
  const random = new SeededRandom("names");
  const alphabet = "abcxyz019.-_*:%/[] \u00e9";
  for (let i = 0; i < 2000; i++) {
    const length = (random.bytes(1)[0] as number) % 20;
    let value = "";
    for (let j = 0; j < length; j++) value += alphabet[(random.bytes(1)[0] as number) % alphabet.length];
    for (const check of [normalizeDnsName, normalizeIpAddress]) {
      try {
        const out = check(value);
        assert.equal(typeof out, "string");
        assert.ok(out.length > 0);
        if (check === normalizeDnsName) assert.match(out, /^[a-z0-9.-]+$/);
      } catch (err) {
        assert.ok(isInvalidSan(err), `${JSON.stringify(value)}: ${String(err)}`);
      }
    }
  }
});
