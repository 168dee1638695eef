import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { CommonError } from "../../common/errors.js";
import { resolveStateRoot } from "../../daemon/state-root.js";
import { openFilesystemSecretStore } from "../../identity/filesystem-secret-store.js";
import {
  deregisterOrExplain,
  readPairedNode,
  startBackground,
  stopBackground,
} from "../../node-host/background.js";
import { BUILT_IN_CAPABILITIES } from "../../node-host/capabilities.js";
import { loadCapabilityModules } from "../../node-host/capability-modules.js";
import { nodePaths, readNodeConfig, readNodeStatus, writeNodeConfig } from "../../node-host/node-files.js";
import { runningProcess } from "../../node-host/pid-file.js";
import { printResult } from "../output.js";
import { currentUser, installUnit, type ServiceScope, systemdUnit, unitDirectory } from "../service-units.js";
import { Spinner } from "../spinner.js";
import { type PairFlags, pairThisDevice } from "./pair.js";

interface Common {
  stateRoot?: string;
  json?: boolean;
}

async function start(flags: Common): Promise<Record<string, unknown>> {
  const root = resolveStateRoot(flags.stateRoot);
  const spinner = new Spinner();
  spinner.start(() => "starting the node host");
  try {
    // The same CLI this command runs under (node, its flags such as --import tsx, the script).
    return { ...(await startBackground(root, [process.execPath, ...process.execArgv, process.argv[1]!])) };
  } finally {
    spinner.stop();
  }
}

async function stop(flags: Common): Promise<Record<string, unknown>> {
  const spinner = new Spinner();
  spinner.start(() => "stopping the node host");
  try {
    return { ...(await stopBackground(resolveStateRoot(flags.stateRoot))) };
  } finally {
    spinner.stop();
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** `palyra node install|start|stop|restart|status|uninstall`: the node host as a background process. */
export function registerNodeServiceCommands(node: Command): void {
  const withCommon = (cmd: Command) =>
    cmd.option("--state-root <dir>", "state directory of this node").option("--json", "JSON output");

  withCommon(
    node
      .command("install")
      .description("pair if needed and record how the node runs in the background (then: node start)")
      .option(
        "--gateway <host:port[,host:port...]>",
        "the gateway's node port (with --code); several, comma-separated, for a cluster's gateways",
      )
      .option("--code <code>", "pairing code, e.g. 7QX2-482193")
      .option("--qr-uri <uri>", "pairing QR URI")
      .option("--name <name>", "this node's name as operators see it")
      .option("--mediation <mode>", "desktop capabilities with no terminal to ask on: allow or deny", "deny")
      .option("--concurrency <n>", "capabilities run at once", "4")
      .option("--transport <kind>", "what carries the session: grpc or quic", "grpc")
      .option("--quic-port <port>", "the gateway's QUIC port when it differs from the node port's")
      .option("--capability-module <file...>", "ES module(s) exporting more capabilities")
      .option("--start", "start it in the background right away")
      .option("--service <scope>", "also write a systemd unit for it: user or system")
      .option("--unit-dir <dir>", "with --service: write the unit here instead"),
  ).action(
    async (
      flags: PairFlags &
        Common & {
          mediation: string;
          concurrency: string;
          transport: string;
          quicPort?: string;
          capabilityModule?: string[];
          start?: boolean;
          service?: string;
          unitDir?: string;
        },
    ) => {
      const root = resolveStateRoot(flags.stateRoot);
      const paths = nodePaths(root);
      if (flags.mediation !== "allow" && flags.mediation !== "deny")
        throw new CommonError(
          "invalid_input",
          "--mediation is allow or deny for a background node (no terminal to ask on)",
        );
      if (flags.transport !== "grpc" && flags.transport !== "quic")
        throw new CommonError("invalid_input", "--transport is grpc or quic");
      if (flags.service !== undefined && flags.service !== "user" && flags.service !== "system")
        throw new CommonError("invalid_input", "--service is user or system");
      const quicPort = flags.quicPort === undefined ? undefined : Number(flags.quicPort);
      if (quicPort !== undefined && (!Number.isInteger(quicPort) || quicPort < 1 || quicPort > 65535))
        throw new CommonError("invalid_input", "--quic-port is 1 to 65535");
      const modules = (flags.capabilityModule ?? []).map((m) => resolve(m));
      await loadCapabilityModules(modules, BUILT_IN_CAPABILITIES);
      let paired = await readPairedNode(root);
      if (!paired) {
        if (!flags.code && !flags.qrUri)
          throw new CommonError(
            "precondition",
            "this node is not paired yet: pass --gateway and --code (or --qr-uri)",
          );
        const store = await openFilesystemSecretStore(paths.secrets);
        try {
          await pairThisDevice(store, { ...flags, clientKind: "node", json: false });
        } finally {
          store.close();
        }
        paired = await readPairedNode(root);
      }
      writeNodeConfig(paths, {
        mediation: flags.mediation,
        concurrency: Number(flags.concurrency),
        capability_modules: modules,
        transport: flags.transport,
        ...(quicPort === undefined ? {} : { quic_port: quicPort }),
      });
      const result: Record<string, unknown> = {
        installed: true,
        device_id: paired?.deviceId,
        gateway: paired?.gateway,
        config: paths.config,
      };
      if (flags.service) {
        const scope = flags.service as ServiceScope;
        const unit = systemdUnit({
          description: "Palyra node host",
          args: ["node", "run", "--state-root", root],
          stateRoot: root,
          scope,
          user: currentUser(),
        });
        Object.assign(result, {
          service: installUnit("palyra-node", unit, scope, unitDirectory(scope, flags.unitDir)),
        });
      }
      if (flags.start) Object.assign(result, { started: await start(flags) });
      printResult(result, { json: flags.json });
    },
  );

  withCommon(node.command("start").description("start the installed node host in the background")).action(
    async (flags: Common) => printResult(await start(flags), { json: flags.json }),
  );
  withCommon(
    node.command("stop").description("stop the background node host (it says goodbye first)"),
  ).action(async (flags: Common) => printResult(await stop(flags), { json: flags.json }));
  withCommon(node.command("restart").description("stop, then start the background node host")).action(
    async (flags: Common) => {
      const stopped = await stop(flags);
      printResult({ stopped, started: await start(flags) }, { json: flags.json });
    },
  );

  withCommon(
    node
      .command("status")
      .description("paired? running? device, gateway, certificate expiry, next renewal, last error"),
  ).action(async (flags: Common) => {
    const root = resolveStateRoot(flags.stateRoot);
    const paths = nodePaths(root);
    const paired = await readPairedNode(root);
    const running = runningProcess(paths.pid);
    const live = readNodeStatus(paths);
    const current = live?.pid === running?.pid ? live : undefined;
    printResult(
      {
        installed: readNodeConfig(paths) !== undefined,
        paired: paired !== undefined,
        running: running !== undefined,
        pid: running?.pid ?? null,
        // A node the gateway refused for good stopped itself: it says so until it pairs again.
        state: current?.state ?? (running ? "starting" : (refused(live?.state) ?? "stopped")),
        transport: current?.transport ?? readNodeConfig(paths)?.transport ?? "grpc",
        device_id: paired?.deviceId ?? null,
        gateway: current?.gateway ?? paired?.gateway ?? null,
        certificate_expires_at: current?.certificate_expires_at ?? paired?.certificateExpiresAt ?? null,
        next_renewal_at: current?.next_renewal_at ?? paired?.renewalDueAt ?? null,
        last_error: current?.last_error ?? (refused(live?.state) ? live?.last_error : undefined) ?? null,
      },
      { json: flags.json },
    );
  });

  withCommon(
    node
      .command("uninstall")
      .description("stop the node, ask the gateway to revoke it, and delete its identity and files")
      .option("--yes", "do not ask for confirmation"),
  ).action(async (flags: Common & { yes?: boolean }) => {
    const root = resolveStateRoot(flags.stateRoot);
    const paths = nodePaths(root);
    const paired = await readPairedNode(root);
    if (!flags.yes) {
      if (!process.stdin.isTTY)
        throw new CommonError(
          "invalid_input",
          "uninstall deletes this node's identity: pass --yes to confirm",
        );
      if (!(await confirm(`Revoke ${paired?.deviceId ?? "this node"} and delete its identity?`)))
        throw new CommonError("invalid_input", "uninstall cancelled");
    }
    const stopped = runningProcess(paths.pid) ? await stop(flags) : undefined;
    let revoked: Record<string, unknown> = { revoked: false, reason: "not paired" };
    if (paired) {
      try {
        const answer = await deregisterOrExplain(root, paired);
        revoked =
          "revokedAt" in answer
            ? { revoked: true, revoked_at: answer.revokedAt }
            : { revoked: true, already: true, reason: answer.refused };
      } catch (err) {
        revoked = {
          revoked: false,
          reason: `${(err as Error).message}; revoke it at the gateway: palyra devices revoke ${paired.deviceId}`,
        };
      }
    }
    rmSync(join(root, "device"), { recursive: true, force: true });
    rmSync(paths.dir, { recursive: true, force: true });
    printResult(
      {
        uninstalled: true,
        device_id: paired?.deviceId ?? null,
        ...(stopped ? { stopped } : {}),
        gateway: revoked,
      },
      { json: flags.json },
    );
  });
}

function refused(state: string | undefined): string | undefined {
  return state === "revoked" || state === "needs_pairing" ? state : undefined;
}
