import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { CommonError } from "../../common/errors.js";
import { gatewayAddresses } from "../../common/host-port.js";
import { resolveStateRoot } from "../../daemon/state-root.js";
import { DeviceIdentity } from "../../identity/device-identity.js";
import {
  type FilesystemSecretStore,
  openFilesystemSecretStore,
} from "../../identity/filesystem-secret-store.js";
import { BUILT_IN_CAPABILITIES, type Mediation } from "../../node-host/capabilities.js";
import { loadCapabilityModules } from "../../node-host/capability-modules.js";
import { NodeHostError } from "../../node-host/errors.js";
import { nodePaths, readNodeConfig, writeNodeStatus } from "../../node-host/node-files.js";
import { NodeSession } from "../../node-host/node-session.js";
import { claimPidFile } from "../../node-host/pid-file.js";
import { recoverCredentials } from "../../node-host/recovery.js";
import { RotatingLog } from "../../node-host/rotating-log.js";
import {
  type DeviceCredentials,
  forgetDeviceCredentials,
  loadDeviceCredentials,
  storeDeviceCredentials,
} from "../../pairing/device-store.js";
import { loadPendingPairing } from "../../pairing/pending-pairing.js";
import { registerNodeServiceCommands } from "./node-service.js";
import { type PairFlags, pairThisDevice } from "./pair.js";

export interface NodeRunFlags extends PairFlags {
  mediation?: string;
  concurrency?: string;
  capabilityModule?: string[];
  logFile?: string;
  transport?: string;
  quicPort?: string;
}

/** Local consent for mediated capabilities: ask on the terminal, or apply allow/deny without asking. */
function consentFor(mediation: Mediation): (question: string) => Promise<boolean> {
  if (mediation !== "prompt") return async () => mediation === "allow";
  return async (question) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
    } finally {
      rl.close();
    }
  };
}

/** Flags first, then what `node install` recorded, then defaults. */
function resolveRunOptions(flags: NodeRunFlags, stateRoot: string) {
  const saved = readNodeConfig(nodePaths(stateRoot));
  const mediation = (flags.mediation ??
    saved?.mediation ??
    (process.stdin.isTTY ? "prompt" : "deny")) as Mediation;
  if (!["prompt", "allow", "deny"].includes(mediation))
    throw new CommonError("invalid_input", "--mediation is prompt, allow or deny");
  const concurrency = Number(flags.concurrency ?? saved?.concurrency ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new CommonError("invalid_input", "--concurrency is 1 to 64");
  const transport = flags.transport ?? saved?.transport ?? "grpc";
  if (transport !== "grpc" && transport !== "quic")
    throw new CommonError("invalid_input", "--transport is grpc or quic");
  const quicPort = flags.quicPort === undefined ? saved?.quic_port : Number(flags.quicPort);
  if (quicPort !== undefined && (!Number.isInteger(quicPort) || quicPort < 1 || quicPort > 65535))
    throw new CommonError("invalid_input", "--quic-port is 1 to 65535");
  return {
    mediation,
    concurrency,
    transport,
    quicPort,
    modules: flags.capabilityModule ?? saved?.capability_modules ?? [],
  } as const;
}

async function runNode(flags: NodeRunFlags): Promise<void> {
  const stateRoot = resolveStateRoot(flags.stateRoot);
  const paths = nodePaths(stateRoot);
  const { mediation, concurrency, modules, transport, quicPort } = resolveRunOptions(flags, stateRoot);
  // Loaded before pairing, so a broken module fails before anything is asked of the gateway.
  const capabilities = await loadCapabilityModules(modules, BUILT_IN_CAPABILITIES);
  const store = await openFilesystemSecretStore(paths.secrets);
  const log = flags.logFile ? new RotatingLog(flags.logFile) : undefined;
  let release: (() => void) | undefined;
  try {
    // Claimed before pairing: two hosts on one state root would pair twice and fight over the session.
    release = await claimPidFile(paths.pid);
    let credentials = await loadDeviceCredentials(store);
    if (credentials && (flags.code || flags.qrUri))
      credentials = await stillPaired(store, credentials, (line) => process.stderr.write(`${line}\n`));
    if (!credentials) {
      if (!flags.code && !flags.qrUri && !(await loadPendingPairing(store)))
        throw new CommonError(
          "precondition",
          "this node is not paired yet: pass --gateway and --code (or --qr-uri)",
        );
      credentials = await pairThisDevice(store, { ...flags, clientKind: "node", requiredKind: "node" });
    }
    // A paired node given --gateway (without a code) takes that list of gateways from now on.
    if (flags.gateway && !flags.code && !flags.qrUri && credentials.gateway !== flags.gateway) {
      gatewayAddresses(flags.gateway);
      credentials = { ...credentials, gateway: flags.gateway };
      await storeDeviceCredentials(store, credentials);
    }
    const identity = await DeviceIdentity.load(store);
    if (!identity)
      throw new CommonError("precondition", "the node's identity is missing from its secret store");
    const report = () => {
      const info = session.info();
      writeNodeStatus(paths, {
        pid: process.pid,
        device_id: identity.deviceId,
        gateway: session.credentials().gateway,
        state: refusedState(session.fatal()) ?? info.state,
        transport,
        certificate_expires_at: new Date(info.certificateExpiresAt).toISOString(),
        next_renewal_at: info.nextRenewalAt === undefined ? null : new Date(info.nextRenewalAt).toISOString(),
        last_error: info.lastError ?? null,
        updated_at: new Date().toISOString(),
      });
    };
    const session: NodeSession = new NodeSession({
      deviceId: identity.deviceId,
      credentials,
      sign: (message) => identity.sign(message),
      saveCredentials: (renewed) => storeDeviceCredentials(store, renewed),
      capabilities,
      consent: consentFor(mediation),
      concurrency,
      transport,
      ...(quicPort === undefined ? {} : { quicPort }),
      recover: (held) =>
        recoverCredentials({
          deviceId: identity.deviceId,
          credentials: held,
          sign: (message) => identity.sign(message),
          now: Date.now(),
        }),
      onEvent: (event) => {
        const line = JSON.stringify({
          time: new Date().toISOString(),
          event: event.kind,
          detail: event.detail,
        });
        if (log) log.write(line);
        // With --json the events are the command's output: JSON lines on stdout.
        else (flags.json ? process.stdout : process.stderr).write(`${line}\n`);
        report();
      },
    });
    const stopped = new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        session.stop().then(resolve, resolve);
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    process.stdout.write(
      flags.json
        ? `${JSON.stringify({ time: new Date().toISOString(), event: "running", device_id: identity.deviceId, gateway: credentials.gateway })}\n`
        : `node ${identity.deviceId} running against ${credentials.gateway}\n`,
    );
    report();
    // The loop ends by itself only when the gateway refuses this device for good (revoked, removed,
    // past recovery): that is exit 6 with the gateway's words, not a retry forever.
    const ended = session.start().then(() => session.fatal());
    const fatal = await Promise.race([stopped.then(() => undefined), ended]);
    report();
    if (fatal) throw fatal;
  } finally {
    release?.();
    log?.close();
    store.close();
  }
}

export function registerNodeCommands(program: Command): void {
  const node = program.command("node").description("run this machine as a node of a gateway");
  node
    .command("run")
    .description(
      "pair if needed, then stay connected and run capabilities the gateway dispatches (Ctrl-C to stop)",
    )
    .option(
      "--gateway <host:port[,host:port...]>",
      "the gateway's node port (first run, with --code); several, comma-separated, for the gateways of a " +
        "cluster: the node moves to the next when one goes away (given later, it replaces the stored list)",
    )
    .option("--code <code>", "pairing code for the first run, e.g. 7QX2-482193")
    .option("--qr-uri <uri>", "pairing QR URI for the first run")
    .option("--name <name>", "this node's name as operators see it")
    .option(
      "--mediation <mode>",
      "desktop capabilities: prompt, allow or deny (default: as installed, else prompt on a terminal, else deny)",
    )
    .option("--concurrency <n>", "capabilities run at once (default 4)")
    .option("--transport <kind>", "what carries the session: grpc or quic (pairing and renewal use gRPC)")
    .option("--quic-port <port>", "the gateway's QUIC port when it differs from the node port's")
    .option(
      "--capability-module <file...>",
      "ES module(s) exporting more capabilities: export const capabilities = [{ name, description, run(input, ctx) }]",
    )
    .option("--log-file <path>", "append events to this file (rotated at 5 MiB, 3 kept) instead of stderr")
    .option("--state-root <dir>", "state directory; the node's secrets go under <dir>/device")
    .option("--json", "print events as JSON lines on stdout (one object per line)")
    .action((flags: NodeRunFlags) => runNode(flags));
  registerNodeServiceCommands(node);
}

/** What `node status` shows for a node the gateway refuses for good. */
function refusedState(fatal: Error | undefined): "revoked" | "needs_pairing" | undefined {
  if (!fatal) return undefined;
  return (fatal as { code?: string }).code === "device_revoked" ? "revoked" : "needs_pairing";
}

/**
 * `node run --code` on a state root that is already paired: if the gateway refuses the old pairing
 * (revoked, removed, past recovery), it is forgotten and the code pairs this machine as a new device;
 * otherwise the code is not needed and is ignored, saying so. Undefined means "pair now".
 */
async function stillPaired(
  store: FilesystemSecretStore,
  credentials: DeviceCredentials,
  say: (line: string) => void,
): Promise<DeviceCredentials | undefined> {
  const identity = await DeviceIdentity.load(store);
  if (!identity) return undefined;
  try {
    const outcome = await recoverCredentials({
      deviceId: identity.deviceId,
      credentials,
      sign: (message) => identity.sign(message),
      now: Date.now(),
    });
    if (outcome.kind === "recovered") {
      await storeDeviceCredentials(store, outcome.credentials);
      say("already paired (certificate recovered); --code is not needed and was ignored");
      return outcome.credentials;
    }
    say("already paired; --code is not needed and was ignored");
    return credentials;
  } catch (err) {
    if (!(err instanceof NodeHostError)) throw err;
    say(`the gateway refuses this node's old pairing (${err.message}); pairing again as a new device`);
    await forgetDeviceCredentials(store);
    await DeviceIdentity.forget(store);
    return undefined;
  }
}
