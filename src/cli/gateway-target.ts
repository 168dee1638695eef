import { existsSync } from "node:fs";
import { join } from "node:path";
import { CommonError } from "../common/errors.js";
import { gatewayAddresses } from "../common/host-port.js";
import { resolveStateRoot, statePaths } from "../daemon/state-root.js";
import {
  type FilesystemSecretStore,
  openFilesystemSecretStore,
} from "../identity/filesystem-secret-store.js";
import { type DeviceCredentials, loadDeviceCredentials } from "../pairing/device-store.js";

/**
 * Which gateway an operator command talks to, and how (like a kubectl context):
 * 1. `--gateway host:port`, else `PALYRA_GATEWAY`: that gateway, over mutual TLS with this state
 *    root's paired device (`--gateway local` forces the local daemon);
 * 2. a daemon running on this state root (daemon.json): it, with its admin token;
 * 3. a CLI or desktop device paired on this state root: the gateway it paired with, with its certificate;
 * 4. otherwise the local daemon, which then says it is not running.
 * On the gateway's own machine the local token path always works (`--gateway local` when PALYRA_GATEWAY
 * is set), so no role change can lock every operator out. `palyra context` says which target applies.
 */
export type GatewayTarget =
  | { kind: "local"; stateRoot: string; reason: string }
  | { kind: "remote"; stateRoot: string; address: string; reason: string };

/** Where a paired device keeps its secrets under a state root. */
export function deviceSecretsDir(stateRoot: string): string {
  return join(stateRoot, "device", "secrets");
}

const stores = new Map<string, Promise<FilesystemSecretStore>>();

/**
 * A state root's device store, opened once per command however many steps read it (choosing the
 * target, renewing, explaining a refusal): opening derives the store's key, the slow part.
 */
export function deviceStore(stateRoot: string): Promise<FilesystemSecretStore> {
  const dir = deviceSecretsDir(stateRoot);
  let store = stores.get(dir);
  if (!store) {
    store = openFilesystemSecretStore(dir);
    stores.set(dir, store);
    store.catch(() => stores.delete(dir));
  }
  return store;
}

/** Closes the stores deviceStore opened (when the command is over). */
export async function closeDeviceStores(): Promise<void> {
  const open = [...stores.values()];
  stores.clear();
  for (const store of open) (await store.catch(() => undefined))?.close();
}

/** The state root's paired device credentials, if it has any (the store is not created when absent). */
export async function loadPairedCredentials(stateRoot: string): Promise<DeviceCredentials | undefined> {
  if (!existsSync(deviceSecretsDir(stateRoot))) return undefined;
  return loadDeviceCredentials(await deviceStore(stateRoot));
}

const PAIRED_REASON = "the gateway this device paired with";

/** A note for a command that went to the paired gateway although this state root has a gateway (stopped). */
export function implicitRemoteNote(target: GatewayTarget): string | undefined {
  if (target.kind !== "remote" || target.reason !== PAIRED_REASON) return undefined;
  if (!existsSync(statePaths(target.stateRoot).database)) return undefined;
  return `note: no daemon runs on ${target.stateRoot}; using ${target.address}, ${PAIRED_REASON} (--gateway local for this one)`;
}

export async function resolveGatewayTarget(
  flags: { gateway?: string; stateRoot?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<GatewayTarget> {
  const stateRoot = resolveStateRoot(flags.stateRoot, env);
  const explicit = flags.gateway ?? (env.PALYRA_GATEWAY || undefined);
  const source = flags.gateway !== undefined ? "--gateway" : "PALYRA_GATEWAY";
  if (explicit === "local") return { kind: "local", stateRoot, reason: `${source} local` };
  if (explicit !== undefined) {
    const addresses = gatewayAddresses(explicit);
    if (addresses.length !== 1)
      throw new CommonError("invalid_input", `${source} names one gateway (host:port) for operator commands`);
    return { kind: "remote", stateRoot, address: addresses[0]!, reason: source };
  }
  if (existsSync(statePaths(stateRoot).daemonInfo))
    return { kind: "local", stateRoot, reason: "a daemon runs on this state root" };
  const credentials = await loadPairedCredentials(stateRoot);
  if (credentials && credentials.clientKind !== "node") {
    const first = gatewayAddresses(credentials.gateway)[0]!;
    return { kind: "remote", stateRoot, address: first, reason: PAIRED_REASON };
  }
  return { kind: "local", stateRoot, reason: "no gateway given and no paired operator device" };
}
