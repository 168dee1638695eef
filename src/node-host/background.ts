import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { PRIVATE_FILE_MODE } from "../common/atomic-file.js";
import { gatewayAddresses, splitHostPort } from "../common/host-port.js";
import { limits } from "../common/limits.js";
import { processAlive } from "../common/process-alive.js";
import { NodeService } from "../gen/palyra/v1/node_pb.js";
import { DeviceIdentity } from "../identity/device-identity.js";
import { openFilesystemSecretStore } from "../identity/filesystem-secret-store.js";
import { renewalDelayMs } from "../identity/rotation.js";
import { type DeviceCredentials, loadDeviceCredentials } from "../pairing/device-store.js";
import { NodePortClient } from "../transport/grpc/client.js";
import { NodeHostError } from "./errors.js";
import { nodePaths, readNodeConfig, readNodeStatus } from "./node-files.js";
import { runningProcess } from "./pid-file.js";
import { type RecoveryOutcome, recoverCredentials } from "./recovery.js";

/** How long `node start` waits for the background node to connect before reporting where it is. */
const START_WAIT_MS = 15_000;
/** How long `node stop` waits after SIGTERM (the node's own goodbye, then the grace) before SIGKILL. */
const STOP_WAIT_MS = limits.shutdownGraceMs + 5_000;
const POLL_MS = 100;

export interface PairedNode {
  deviceId: string;
  gateway: string;
  certificateExpiresAt: string;
  renewalDueAt: string;
  credentials: DeviceCredentials;
}

/** This state root's paired node, read from its secret store; undefined when it has not paired. */
export async function readPairedNode(stateRoot: string): Promise<PairedNode | undefined> {
  const paths = nodePaths(stateRoot);
  if (!existsSync(paths.secrets)) return undefined;
  const store = await openFilesystemSecretStore(paths.secrets);
  try {
    const [credentials, identity] = await Promise.all([
      loadDeviceCredentials(store),
      DeviceIdentity.load(store),
    ]);
    if (!credentials || !identity) return undefined;
    const now = Date.now();
    return {
      deviceId: identity.deviceId,
      gateway: credentials.gateway,
      certificateExpiresAt: new Date(new X509Certificate(credentials.clientCertPem).validTo).toISOString(),
      renewalDueAt: new Date(now + renewalDelayMs(credentials.clientCertPem, now)).toISOString(),
      credentials,
    };
  } finally {
    store.close();
  }
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function tail(path: string, lines = 5): string {
  if (!existsSync(path)) return "";
  return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Starts `palyra node run` detached, events to the rotating node.log, its own output to node.out; waits
 * until it reports itself connected (or gives up waiting and says where it is; it keeps retrying).
 * `command` is how to run the palyra CLI (node and its arguments up to the script).
 */
export async function startBackground(stateRoot: string, command: readonly string[]) {
  const paths = nodePaths(stateRoot);
  if (!readNodeConfig(paths))
    throw new NodeHostError("not_installed", "this node is not installed: run palyra node install first");
  if (!(await readPairedNode(stateRoot)))
    throw new NodeHostError("not_paired", "this node is not paired: run palyra node install with --code");
  const already = runningProcess(paths.pid);
  if (already)
    return {
      running: true,
      pid: already.pid,
      state: readNodeStatus(paths)?.state ?? "starting",
      already_running: true,
    };
  const out = openSync(paths.output, "a", PRIVATE_FILE_MODE);
  const [executable, ...prefix] = command;
  const child = spawn(
    executable!,
    [...prefix, "node", "run", "--state-root", stateRoot, "--log-file", paths.log],
    { detached: true, stdio: ["ignore", out, out], env: process.env },
  );
  closeSync(out);
  let exited: number | null | undefined;
  child.once("exit", (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + START_WAIT_MS;
  for (;;) {
    if (exited !== undefined)
      throw new NodeHostError(
        "start_failed",
        `the node host exited (code ${exited}) while starting:\n${tail(paths.output) || tail(paths.log)}`,
      );
    const status = readNodeStatus(paths);
    if (status && status.pid === child.pid && status.state === "connected")
      return { running: true, pid: child.pid, state: status.state };
    if (Date.now() >= deadline)
      return {
        running: true,
        pid: child.pid,
        state: status?.state ?? "starting",
        last_error: status?.last_error ?? null,
        note: "not connected yet; it keeps retrying (see palyra node status)",
      };
    await pause(POLL_MS);
  }
}

/** SIGTERM (the node half-closes its session and exits 0), SIGKILL if it is still there after the grace. */
export async function stopBackground(stateRoot: string) {
  const paths = nodePaths(stateRoot);
  const running = runningProcess(paths.pid);
  if (!running) return { stopped: false, reason: "not running" };
  process.kill(running.pid, "SIGTERM");
  let forced = false;
  const deadline = Date.now() + STOP_WAIT_MS;
  while (processAlive(running.pid)) {
    if (Date.now() >= deadline && !forced) {
      process.kill(running.pid, "SIGKILL");
      forced = true;
    }
    await pause(POLL_MS / 2);
  }
  // A killed node could not remove its own pid file.
  if (forced) rmSync(paths.pid, { force: true });
  return { stopped: true, pid: running.pid, forced };
}

/** Asks the gateway to revoke this device (NodeService.Deregister, over its own mutual TLS). */
export async function deregister(node: PairedNode): Promise<string> {
  const { host, port } = splitHostPort(gatewayAddresses(node.gateway)[0]!);
  const client = new NodePortClient({
    host,
    port,
    pinnedCa: node.credentials.caCertPem,
    clientIdentity: { certChainPem: node.credentials.clientCertPem, keyPem: node.credentials.clientKeyPem },
  });
  try {
    const answer = await client
      .service(NodeService)
      .deregister({ deviceId: node.deviceId, reason: "node uninstalled" }, { timeoutMs: 10_000 });
    return new Date(Number(answer.revokedAtUnixMs)).toISOString();
  } finally {
    client.close();
  }
}

/**
 * Deregisters the node, or finds out why it cannot: a device the gateway already refuses (revoked,
 * removed) needs no revoking, and one whose certificate merely expired recovers and then deregisters.
 * Resolves the revocation time, or `{ refused }` with the gateway's words; throws when the gateway
 * cannot be asked at all.
 */
export async function deregisterOrExplain(
  stateRoot: string,
  node: PairedNode,
): Promise<{ revokedAt: string } | { refused: string }> {
  try {
    return { revokedAt: await deregister(node) };
  } catch (first) {
    const store = await openFilesystemSecretStore(nodePaths(stateRoot).secrets);
    try {
      const identity = await DeviceIdentity.load(store);
      if (!identity) throw first;
      let outcome: RecoveryOutcome;
      try {
        outcome = await recoverCredentials({
          deviceId: node.deviceId,
          credentials: node.credentials,
          sign: (message) => identity.sign(message),
          now: Date.now(),
        });
      } catch (err) {
        if (err instanceof NodeHostError) return { refused: err.message };
        throw err;
      }
      if (outcome.kind !== "recovered") throw first;
      return { revokedAt: await deregister({ ...node, credentials: outcome.credentials }) };
    } finally {
      store.close();
    }
  }
}
