import { join } from "node:path";
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { CommonError } from "../../common/errors.js";
import { resolveStateRoot } from "../../daemon/state-root.js";
import { DeviceIdentity } from "../../identity/device-identity.js";
import { openFilesystemSecretStore } from "../../identity/filesystem-secret-store.js";
import { BUILT_IN_CAPABILITIES, type Mediation } from "../../node-host/capabilities.js";
import { NodeSession } from "../../node-host/node-session.js";
import { loadDeviceCredentials } from "../../pairing/device-store.js";
import { type PairFlags, pairThisDevice } from "./pair.js";

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

export function registerNodeCommands(program: Command): void {
  const node = program.command("node").description("run this machine as a node of a gateway");
  node
    .command("run")
    .description(
      "pair if needed, then stay connected and run capabilities the gateway dispatches (Ctrl-C to stop)",
    )
    .option("--gateway <host:port>", "the gateway's node port (first run, with --code)")
    .option("--code <code>", "pairing code for the first run, e.g. 7QX2-482193")
    .option("--qr-uri <uri>", "pairing QR URI for the first run")
    .option("--name <name>", "this node's name as operators see it")
    .option(
      "--mediation <mode>",
      "desktop capabilities: prompt, allow or deny (default: prompt on a terminal, else deny)",
    )
    .option("--concurrency <n>", "capabilities run at once", "4")
    .option("--state-root <dir>", "state directory; the node's secrets go under <dir>/device")
    .action(async (flags: PairFlags & { mediation?: string; concurrency: string }) => {
      const mediation = (flags.mediation ?? (process.stdin.isTTY ? "prompt" : "deny")) as Mediation;
      if (!["prompt", "allow", "deny"].includes(mediation))
        throw new CommonError("invalid_input", "--mediation is prompt, allow or deny");
      const concurrency = Number(flags.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
        throw new CommonError("invalid_input", "--concurrency is 1 to 64");
      const store = await openFilesystemSecretStore(
        join(resolveStateRoot(flags.stateRoot), "device", "secrets"),
      );
      try {
        let credentials = await loadDeviceCredentials(store);
        if (!credentials) {
          if (!flags.code && !flags.qrUri)
            throw new CommonError(
              "precondition",
              "this node is not paired yet: pass --gateway and --code (or --qr-uri)",
            );
          credentials = await pairThisDevice(store, { ...flags, clientKind: "node" });
        }
        const identity = await DeviceIdentity.load(store);
        if (!identity)
          throw new CommonError("precondition", "the node's identity is missing from its secret store");
        const session = new NodeSession({
          deviceId: identity.deviceId,
          credentials,
          capabilities: BUILT_IN_CAPABILITIES,
          consent: consentFor(mediation),
          concurrency,
          onEvent: (event) =>
            process.stderr.write(
              `${JSON.stringify({ time: new Date().toISOString(), event: event.kind, detail: event.detail })}\n`,
            ),
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
        process.stdout.write(`node ${identity.deviceId} running against ${credentials.gateway}\n`);
        void session.start();
        await stopped;
      } finally {
        store.close();
      }
    });
}
