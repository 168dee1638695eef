import { createHash, createPublicKey } from "node:crypto";
import { isIP } from "node:net";
import { isCanonicalId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import {
  CLIENT_AUTH_EKU_DER,
  encodeName,
  LEAF_BASIC_CONSTRAINTS_DER,
  LEAF_KEY_USAGE_DER,
  SERVER_AUTH_EKU_DER,
  subjectAltNameExtension,
} from "./certificate-der.js";
import { IdentityError } from "./errors.js";
import { x509 } from "./x509-setup.js";

/**
 * What goes into each kind of certificate (DESIGN section 4): subjects and extension sets for the CA,
 * the gateway's server certificate and device client certificates. Names from configuration and device
 * ids are validated here, so nothing malformed reaches a certificate. Nothing here signs anything.
 */

export const SERVER_COMMON_NAME = "palyrad";
export const ORGANIZATION = "Palyra";
/**
 * A DNS name every gateway certificate carries, for clients that reach the gateway by IP address but
 * must name a DNS SAN (the QUIC library matches no IP SANs).
 */
export const GATEWAY_DNS_NAME = "palyra-gateway";
/** Always on the server certificate, before any configured name. */
export const DEFAULT_SERVER_DNS_NAMES: readonly string[] = Object.freeze(["localhost", GATEWAY_DNS_NAME]);
export const DEFAULT_SERVER_IP_ADDRESSES: readonly string[] = Object.freeze(["127.0.0.1", "::1"]);
/** Client certificates bind the device through this URI SAN; the gateway trusts it (with the fingerprint). */
export const DEVICE_URI_PREFIX = "urn:palyra:device:";

// @peculiar/x509 forms of the shared leaf extensions, for the reference path only (see LeafProfile).
const LEAF_BASIC_CONSTRAINTS = new x509.BasicConstraintsExtension(false, undefined, true);
const LEAF_KEY_USAGE = new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true);
const SERVER_EXTENDED_KEY_USAGE = new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]);
const CLIENT_EXTENDED_KEY_USAGE = new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]);
const SERVER_SUBJECT_DER = encodeName({ CN: SERVER_COMMON_NAME });

/**
 * A leaf's subject and extensions (all but the SKI and AKI, which the CA adds). The CA uses the DER
 * forms; `subject` and `extensions` describe the same for @peculiar/x509, the reference the DER
 * encoding is tested against, and are built only when read. Shared instances: do not modify.
 */
export interface LeafProfile {
  readonly subjectDer: Buffer;
  readonly extensionsDer: readonly Buffer[];
  readonly subject: x509.JsonName;
  readonly extensions: readonly x509.Extension[];
}

function leafProfile(
  subject: x509.JsonName,
  subjectDer: Buffer,
  extensionsDer: readonly Buffer[],
  referenceExtensions: () => x509.Extension[],
): LeafProfile {
  let extensions: x509.Extension[] | undefined;
  return {
    subject,
    subjectDer,
    extensionsDer,
    get extensions() {
      extensions ??= referenceExtensions();
      return extensions;
    },
  };
}

export interface ServerNames {
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
}

/** `CN=Palyra Gateway CA <first 8 hex of SHA-256 of the CA SPKI>`. */
export function caCommonName(spkiSha256Hex: string): string {
  if (!/^[0-9a-f]{64}$/.test(spkiSha256Hex)) throw new RangeError("expected a lowercase hex SHA-256");
  return `Palyra Gateway CA ${spkiSha256Hex.slice(0, 8)}`;
}

/** CA: BasicConstraints cA=true pathLen=0 (critical), KeyUsage keyCertSign+cRLSign (critical), SKI. */
export function caExtensions(subjectKeyIdHex: string): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    new x509.SubjectKeyIdentifierExtension(subjectKeyIdHex),
  ];
}

/**
 * Server: CN palyrad; DNS SANs localhost + configured; IP SANs 127.0.0.1, ::1 + configured; EKU serverAuth;
 * KeyUsage digitalSignature (critical); BasicConstraints cA=false.
 */
export function serverProfile(names: ServerNames = {}): LeafProfile {
  const { dnsNames, ipAddresses } = serverAltNames(names);
  return leafProfile(
    [{ CN: [SERVER_COMMON_NAME] }],
    SERVER_SUBJECT_DER,
    [
      LEAF_BASIC_CONSTRAINTS_DER,
      LEAF_KEY_USAGE_DER,
      SERVER_AUTH_EKU_DER,
      subjectAltNameExtension({ dnsNames, ipAddresses }),
    ],
    () => [
      LEAF_BASIC_CONSTRAINTS,
      LEAF_KEY_USAGE,
      SERVER_EXTENDED_KEY_USAGE,
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...ipAddresses.map((value) => ({ type: "ip" as const, value })),
      ]),
    ],
  );
}

/**
 * Client: CN = device id, O = Palyra; URI SAN urn:palyra:device:<id>; EKU clientAuth; KeyUsage
 * digitalSignature (critical); BasicConstraints cA=false.
 */
export function clientProfile(deviceId: string): LeafProfile {
  const uri = deviceUri(deviceId);
  return leafProfile(
    [{ CN: [deviceId] }, { O: [ORGANIZATION] }],
    encodeName({ CN: deviceId, O: ORGANIZATION }),
    [
      LEAF_BASIC_CONSTRAINTS_DER,
      LEAF_KEY_USAGE_DER,
      CLIENT_AUTH_EKU_DER,
      subjectAltNameExtension({ uris: [uri] }),
    ],
    () => [
      LEAF_BASIC_CONSTRAINTS,
      LEAF_KEY_USAGE,
      CLIENT_EXTENDED_KEY_USAGE,
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: uri }]),
    ],
  );
}

/** The URI SAN of a device; the id must be a canonical ULID. */
export function deviceUri(deviceId: string): string {
  if (!isCanonicalId(deviceId))
    throw new IdentityError(
      "invalid_san",
      "a device id must be a canonical ULID (26 characters of Crockford base32)",
    );
  return DEVICE_URI_PREFIX + deviceId;
}

/** The device id in a `urn:palyra:device:<id>` URI, or undefined when the URI is anything else. */
export function deviceIdFromUri(uri: string): string | undefined {
  if (!uri.startsWith(DEVICE_URI_PREFIX)) return undefined;
  const id = uri.slice(DEVICE_URI_PREFIX.length);
  return isCanonicalId(id) ? id : undefined;
}

/** The server certificate's SANs: defaults first, then configured ones, validated, normalised, deduplicated. */
export function serverAltNames(names: ServerNames = {}): { dnsNames: string[]; ipAddresses: string[] } {
  const dns = checkList(names.dnsNames, "DNS names");
  const ips = checkList(names.ipAddresses, "IP addresses");
  return {
    dnsNames: [...new Set([...DEFAULT_SERVER_DNS_NAMES, ...dns.map(normalizeDnsName)])],
    ipAddresses: [...new Set([...DEFAULT_SERVER_IP_ADDRESSES, ...ips.map(normalizeIpAddress)])],
  };
}

function checkList(list: readonly string[] | undefined, what: string): readonly string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new IdentityError("invalid_san", `server ${what} must be a list`);
  if (list.length > limits.maxServerAltNames)
    throw new IdentityError(
      "invalid_san",
      `at most ${limits.maxServerAltNames} server ${what} may be configured`,
    );
  return list;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A host name for a DNS SAN, lower-cased: dot-separated labels of letters, digits and inner hyphens
 * (1-63 characters each, 253 in all), one trailing dot dropped. Wildcards, IP addresses (use the IP
 * list), underscores, spaces, URLs and ports are refused.
 */
export function normalizeDnsName(name: string): string {
  const shown = JSON.stringify(typeof name === "string" ? name.slice(0, 80) : name);
  if (typeof name !== "string" || name.length === 0)
    throw new IdentityError("invalid_san", "a DNS name must be a non-empty string");
  if (name.includes("*"))
    throw new IdentityError(
      "invalid_san",
      `wildcard DNS names are not allowed on the server certificate: ${shown}`,
    );
  if (isIP(name) !== 0 || isIP(name.replace(/^\[|\]$/g, "")) !== 0)
    throw new IdentityError(
      "invalid_san",
      `${shown} is an IP address: configure it as an IP address, not a DNS name`,
    );
  const host = (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();
  const labels = host.split(".");
  if (host.length > 253 || !labels.every((label) => DNS_LABEL.test(label)))
    throw new IdentityError(
      "invalid_san",
      `${shown} is not a valid DNS name (letters, digits, inner hyphens; labels of 1-63 characters)`,
    );
  // A name whose last label is all digits is neither a host name nor a valid IPv4 address ("1.2.3").
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string))
    throw new IdentityError("invalid_san", `${shown} is not a valid DNS name (numeric top-level label)`);
  return host;
}

/**
 * An IPv4 or IPv6 address for an IP SAN, in canonical form. Zone ids (`fe80::1%eth0`), brackets, CIDR
 * ranges, ports and host names are refused.
 */
export function normalizeIpAddress(address: string): string {
  const shown = JSON.stringify(typeof address === "string" ? address.slice(0, 80) : address);
  if (typeof address !== "string" || address.length === 0)
    throw new IdentityError("invalid_san", "an IP address must be a non-empty string");
  if (address.includes("%"))
    throw new IdentityError("invalid_san", `IPv6 zone ids cannot go into a certificate: ${shown}`);
  const version = isIP(address);
  if (version === 4) return address;
  if (version === 6) return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  throw new IdentityError("invalid_san", `${shown} is not an IPv4 or IPv6 address`);
}

/**
 * Key identifier (RFC 5280 section 4.2.1.2, method 1): SHA-1 of the subjectPublicKey BIT STRING's
 * value, here the uncompressed EC point 04 || X || Y. Lowercase hex.
 */
export function keyIdentifier(spkiDer: Uint8Array): string {
  const jwk = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" }).export({
    format: "jwk",
  });
  if (jwk.kty !== "EC" || typeof jwk.x !== "string" || typeof jwk.y !== "string")
    throw new IdentityError("unsupported_key", "key identifiers are computed for EC keys only");
  const point = Buffer.concat([
    Buffer.of(0x04),
    Buffer.from(jwk.x, "base64url"),
    Buffer.from(jwk.y, "base64url"),
  ]);
  return createHash("sha1").update(point).digest("hex");
}
