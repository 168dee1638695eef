import { X509Certificate } from "node:crypto";
import { CommonError } from "../common/errors.js";
import { gatewayAddresses, splitHostPort } from "../common/host-port.js";
import { NodeService } from "../gen/palyra/v1/node_pb.js";
import { DeviceIdentity } from "../identity/device-identity.js";
import { renewalDelayMs } from "../identity/rotation.js";
import { recoverCredentials } from "../node-host/recovery.js";
import { renewCredentials } from "../node-host/renewal.js";
import {
  type DeviceCredentials,
  loadDeviceCredentials,
  storeDeviceCredentials,
} from "../pairing/device-store.js";
import { NodePortClient } from "../transport/grpc/client.js";
import { deviceStore } from "./gateway-target.js";

/** What to do with a device certificate before using it, at `now`. */
export function certificateAction(certPem: string, now: number): "use" | "renew" | "recover" {
  const cert = new X509Certificate(certPem);
  if (now >= Date.parse(cert.validTo)) return "recover";
  return renewalDelayMs(certPem, now) === 0 ? "renew" : "use";
}

export interface OperatorCredentials {
  deviceId: string;
  credentials: DeviceCredentials;
}

/**
 * The state root's paired device, with a certificate fit to use: renewed first (make-before-break,
 * the node's own renewal: a new key, signed for with the identity key, stored only once checked) when
 * past 2/3 of its life, or recovered by proving the identity key when it expired while the device was
 * away. A renewal that fails leaves the current certificate in use; a refused recovery says why.
 */
export async function operatorCredentials(
  stateRoot: string,
  address: string,
  options: { now?: () => number; warn?: (line: string) => void } = {},
): Promise<OperatorCredentials> {
  const now = options.now ?? Date.now;
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const store = await deviceStore(stateRoot);
  const credentials = await loadDeviceCredentials(store);
  const identity = await DeviceIdentity.load(store);
  if (!credentials || !identity)
    throw new CommonError(
      "precondition",
      `no paired device in ${stateRoot}: pair this CLI first (palyra pair --gateway ${address} --code <code>), and have an operator approve it with a role`,
    );
  if (credentials.clientKind === "node")
    throw new CommonError(
      "precondition",
      "this state root holds a node's credentials; a node cannot be an operator",
    );
  // The gateway asked is the one this command targets (another member of the same cluster is fine).
  const here = { ...credentials, gateway: address };
  const sign = (message: Uint8Array) => identity.sign(message);
  const action = certificateAction(credentials.clientCertPem, now());
  if (action === "recover") {
    const outcome = await recoverCredentials({
      deviceId: identity.deviceId,
      credentials: here,
      sign,
      now: now(),
    });
    if (outcome.kind !== "recovered")
      throw new CommonError(
        "precondition",
        `this device's certificate expired and could not be recovered: ${outcome.detail}`,
      );
    const recovered = { ...outcome.credentials, gateway: credentials.gateway };
    await storeDeviceCredentials(store, recovered);
    warn("this device's certificate had expired; it was recovered");
    return { deviceId: identity.deviceId, credentials: recovered };
  }
  if (action === "renew") {
    const { host, port } = splitHostPort(gatewayAddresses(address)[0]!);
    const client = new NodePortClient({
      host,
      port,
      pinnedCa: credentials.caCertPem,
      clientIdentity: { certChainPem: credentials.clientCertPem, keyPem: credentials.clientKeyPem },
    });
    try {
      const renewed = await renewCredentials({
        rpc: client.service(NodeService),
        deviceId: identity.deviceId,
        credentials: here,
        sign,
        now: now(),
      });
      const stored = { ...renewed, gateway: credentials.gateway };
      await storeDeviceCredentials(store, stored);
      return { deviceId: identity.deviceId, credentials: stored };
    } catch (err) {
      // Make-before-break: the current certificate still works; the next command tries again.
      warn(`could not renew this device's certificate (${(err as Error).message}); using the current one`);
    } finally {
      client.close();
    }
  }
  return { deviceId: identity.deviceId, credentials };
}

/**
 * After a call could not get through: asks the gateway (by the identity key, no certificate needed)
 * whether this device is still in good standing. Throws the gateway's refusal (revoked, with its
 * reason, or removed: exit 6); returns a note when a new certificate was recovered and stored; returns
 * undefined when the certificate is fine or the gateway cannot be asked (the trouble is the network).
 */
export async function checkStanding(stateRoot: string, address: string): Promise<string | undefined> {
  const store = await deviceStore(stateRoot);
  const credentials = await loadDeviceCredentials(store);
  const identity = await DeviceIdentity.load(store);
  if (!credentials || !identity) return undefined;
  const outcome = await recoverCredentials({
    deviceId: identity.deviceId,
    credentials: { ...credentials, gateway: address },
    sign: (message) => identity.sign(message),
    now: Date.now(),
  });
  if (outcome.kind !== "recovered") return undefined;
  await storeDeviceCredentials(store, { ...outcome.credentials, gateway: credentials.gateway });
  return "the gateway no longer took this device's certificate; a new one was recovered: run the command again";
}
