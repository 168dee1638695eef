import { systemClock } from "../../src/common/clock.js";
import { newId } from "../../src/common/ids.js";
import { systemRandom } from "../../src/common/random.js";
import type { CertificateAuthority } from "../../src/identity/ca.js";
import { createCsr, generateP256KeyPair } from "../../src/identity/csr.js";
import { type DeviceRegistry, trustedCertificateOf } from "../../src/identity/device-registry.js";

/** Shared fixtures for tests that need real certificates and real TLS. */

export const WAIT_MS = 5_000;

/** Rejects if `promise` has not settled within `ms`: tests wait on events, never on sleeps. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export interface Credential {
  certPem: string;
  keyPem: string;
  der: Buffer;
}

/** A leaf from `authority` for a fresh P-256 key (the key never leaves the test, as on a real device). */
export async function issueLeaf(
  authority: CertificateAuthority,
  kind: "server" | "client",
  deviceId = newId(systemClock, systemRandom),
): Promise<Credential> {
  const keys = generateP256KeyPair();
  const csr = await createCsr(keys.privateKey, keys.publicKey);
  const issued =
    kind === "server"
      ? await authority.issueServerCertificate(csr)
      : await authority.issueClientCertificate(csr, { deviceId });
  return {
    certPem: issued.pem,
    keyPem: keys.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    der: issued.der,
  };
}

/** A client certificate for a new device id, recorded in the registry as paired. */
export async function recordPairedDevice(
  devices: DeviceRegistry,
  authority: CertificateAuthority,
  clientKind = "node",
): Promise<Credential & { deviceId: string }> {
  const deviceId = newId(systemClock, systemRandom);
  const credential = await issueLeaf(authority, "client", deviceId);
  await devices.recordPairing({
    deviceId,
    clientKind,
    deviceName: "worker",
    platform: "linux",
    identityPublicKey: Buffer.alloc(32, 3),
    certificate: trustedCertificateOf(credential.certPem),
  });
  return { ...credential, deviceId };
}
