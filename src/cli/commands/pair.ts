import { X509Certificate } from "node:crypto";
import { hostname, platform } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { systemClock } from "../../common/clock.js";
import { CommonError } from "../../common/errors.js";
import { gatewayAddresses, splitHostPort } from "../../common/host-port.js";
import { limits } from "../../common/limits.js";
import { systemRandom } from "../../common/random.js";
import { spkiDigest } from "../../crypto/fingerprint.js";
import { resolveStateRoot } from "../../daemon/state-root.js";
import { DeviceIdentity } from "../../identity/device-identity.js";
import {
  type FilesystemSecretStore,
  openFilesystemSecretStore,
} from "../../identity/filesystem-secret-store.js";
import { parseTypedCode } from "../../pairing/codes.js";
import { DevicePairingClient, type PendingPairing } from "../../pairing/device-client.js";
import {
  type DeviceCredentials,
  loadDeviceCredentials,
  saveDeviceCredentials,
} from "../../pairing/device-store.js";
import { PairingError } from "../../pairing/errors.js";
import { kindMismatchMessage, pairCommand, parseKindMismatch } from "../../pairing/pair-command.js";
import {
  forgetPendingPairing,
  loadPendingPairing,
  type StoredPendingPairing,
  savePendingPairing,
} from "../../pairing/pending-pairing.js";
import { parseQrUri } from "../../pairing/qr-uri.js";
import { GrpcPairingTransport } from "../../transport/grpc/pairing-client.js";
import { FailoverPairingTransport } from "../../transport/grpc/pairing-failover.js";
import { isRpcError, RpcStatus } from "../../transport/grpc/rpc-error.js";
import { printResult } from "../output.js";
import { formatRemaining, Spinner } from "../spinner.js";

export interface PairFlags {
  /** Set by `node run`: the only kind this command pairs as (a QR code for another kind is refused). */
  requiredKind?: string;
  gateway?: string;
  code?: string;
  qrUri?: string;
  name?: string;
  clientKind: string;
  stateRoot?: string;
  json?: boolean;
}

/** `palyra pair`: pairs this machine with a gateway as a device, and waits for a human to approve. */
export function registerPairCommand(program: Command): void {
  program
    .command("pair")
    .description("pair this machine with a gateway (by PIN or QR URI) and wait for approval")
    .option("--gateway <host:port>", "the gateway's node port (not needed with --qr-uri)")
    .option("--code <code>", "the pairing code, e.g. 7QX2-482193")
    .option("--qr-uri <uri>", "the palyra://pair?... URI from a QR code")
    .option("--name <name>", "this device's name as the operator sees it", hostname())
    .option("--client-kind <kind>", "cli, desktop or node (must match the code)", "cli")
    .option("--state-root <dir>", "state directory; the device's secrets go under <dir>/device")
    .option("--json", "JSON output")
    .action(async (flags: PairFlags) => {
      const store = await openFilesystemSecretStore(
        join(resolveStateRoot(flags.stateRoot), "device", "secrets"),
      );
      try {
        await pairThisDevice(store, flags);
      } finally {
        store.close();
      }
    });
}

/**
 * Pairs the device whose secrets are in `store`, waits for approval, and stores what it receives. A
 * pairing that was waiting when this process (or the gateway) stopped is resumed instead: the request,
 * its CSR key and the CA are kept (encrypted) beside the identity until the certificate is stored.
 */
export async function pairThisDevice(
  store: FilesystemSecretStore,
  flags: PairFlags,
): Promise<DeviceCredentials> {
  const resumed = await loadPendingPairing(store);
  if (resumed) {
    const outcome = await waitAndStore(store, resumed, flags, true);
    if (outcome !== "gone") return outcome;
    await forgetPendingPairing(store);
  }
  if (!flags.code === !flags.qrUri)
    throw new CommonError(
      "invalid_input",
      resumed
        ? "the earlier pairing request is gone from the gateway; pair again with --code or --qr-uri"
        : "give exactly one of --code or --qr-uri",
    );
  const qr = flags.qrUri ? parseQrUri(flags.qrUri) : undefined;
  const typed = flags.code ? parseTypedCode(flags.code) : undefined;
  const gateway = qr?.gateway ?? flags.gateway;
  if (!gateway) throw new CommonError("invalid_input", "--gateway <host:port> is required with --code");
  // Several gateways (a cluster): the pairing runs with the first; the node keeps the whole list.
  const { host, port } = splitHostPort(gatewayAddresses(gateway)[0]!);
  const clientKind = qr?.clientKind ?? flags.clientKind;
  if (flags.requiredKind !== undefined && clientKind !== flags.requiredKind)
    throw new PairingError(
      "kind_mismatch",
      `${kindMismatchMessage(clientKind, flags.requiredKind)}; use it with: ${pairCommand({ clientKind, qrUri: flags.qrUri! })}`,
    );

  const identity = await DeviceIdentity.loadOrCreate(store, systemClock, systemRandom);
  const transport = new GrpcPairingTransport(host, port, qr?.caSpkiSha256);
  let pending: PendingPairing;
  try {
    const client = new DevicePairingClient(transport, identity, systemClock, systemRandom);
    pending = await client
      .pair({
        codeId: qr?.codeId ?? typed?.codeId ?? "",
        secret: qr?.secret ?? typed!.pin,
        clientKind,
        deviceName: flags.name ?? hostname(),
        platform: platform(),
        ...(qr ? { caPin: qr.caSpkiSha256 } : {}),
      })
      .catch((err: unknown) => {
        // The gateway names the code's kind (only to a device that proved the code): say what to run.
        const codeKind = err instanceof Error ? parseKindMismatch(err.message) : undefined;
        if (codeKind === undefined) throw err;
        const command = pairCommand({
          clientKind: codeKind,
          gateway,
          ...(qr ? { qrUri: flags.qrUri! } : { typed: flags.code!.trim() }),
        });
        throw new PairingError(
          "kind_mismatch",
          `${kindMismatchMessage(codeKind, clientKind)}; use it with: ${command}`,
          { cause: err },
        );
      });
  } finally {
    transport.close();
  }
  const stored: StoredPendingPairing = {
    ...pending,
    gateway,
    clientKind,
    ...(qr ? { caPin: qr.caSpkiSha256 } : {}),
  };
  // Kept before waiting: a restart of this process or of the gateway resumes this same request.
  await savePendingPairing(store, stored);
  const outcome = await waitAndStore(store, stored, flags, false);
  if (outcome === "gone") {
    await forgetPendingPairing(store);
    throw new PairingError(
      "request_not_found",
      "the gateway no longer knows this pairing request; pair again",
    );
  }
  return outcome;
}

/** Waits for the decision on a (new or resumed) request and stores the certificate; "gone" if the gateway forgot it. */
async function waitAndStore(
  store: FilesystemSecretStore,
  pending: StoredPendingPairing,
  flags: PairFlags,
  resuming: boolean,
): Promise<DeviceCredentials | "gone"> {
  const identity = await DeviceIdentity.load(store);
  if (!identity) return "gone";
  // Pinned to the CA learned in the exchange (or the QR code's): every poll connection, first or after
  // a drop or restart, must reach the same gateway, or another gateway of the same cluster (the next
  // in the --gateway list when the one in use stops answering).
  const transport = new FailoverPairingTransport(
    gatewayAddresses(pending.gateway).map(splitHostPort),
    pending.caPin ?? spkiDigest(new X509Certificate(pending.caCertDer)),
  );
  const spinner = new Spinner();
  try {
    const client = new DevicePairingClient(transport, identity, systemClock, systemRandom);
    process.stdout.write(
      flags.json
        ? `${JSON.stringify({ time: new Date().toISOString(), event: resuming ? "pairing_resumed" : "pairing_requested", request_id: pending.requestId, comparison_code: pending.comparisonCode })}\n`
        : `${resuming ? "resuming pairing request " : "request id       "}${pending.requestId}\ncomparison code  ${pending.comparisonCode}  (check the approver sees the same)\n`,
    );
    const deadline = Date.now() + limits.pairingRequestTtlMs;
    spinner.start(
      () =>
        `waiting for approval (palyra pairing approve ${pending.requestId}) ${formatRemaining(deadline - Date.now())} left`,
    );
    let material: Awaited<ReturnType<DevicePairingClient["waitForDecision"]>>;
    try {
      material = await client.waitForDecision(pending);
    } catch (err) {
      if (isRpcError(err, RpcStatus.NOT_FOUND)) return "gone";
      throw err;
    }
    spinner.stop();
    if (material.state !== "completed") {
      await forgetPendingPairing(store);
      throw new PairingError(
        material.state === "rejected" ? "rejected" : "request_expired",
        `pairing was ${material.state}${material.reason ? `: ${material.reason}` : ""}`,
      );
    }
    await saveDeviceCredentials(store, {
      privateKey: pending.keyPair.privateKey,
      clientCertPem: material.clientCertPem!,
      caCertPem: material.caCertPem!,
      gateway: pending.gateway,
      clientKind: pending.clientKind,
    });
    await forgetPendingPairing(store);
    const result = {
      state: "completed",
      device_id: identity.deviceId,
      request_id: pending.requestId,
      comparison_code: pending.comparisonCode,
      gateway: pending.gateway,
      certificate_expires_at: new Date(material.certExpiresAt!).toISOString(),
      ...(resuming ? { resumed: true } : {}),
    };
    // With --json, pairing speaks in JSON lines (the request first, while it waits; then this).
    if (flags.json)
      process.stdout.write(
        `${JSON.stringify({ time: new Date().toISOString(), event: "paired", ...result })}\n`,
      );
    else printResult(result, { json: false });
  } finally {
    spinner.stop();
    transport.close();
  }
  const stored = await loadDeviceCredentials(store);
  if (!stored)
    throw new CommonError("internal", "pairing finished but the credentials could not be read back");
  return stored;
}
