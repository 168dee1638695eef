import { X509Certificate } from "node:crypto";
import type { Command } from "commander";
import { readDaemonInfo } from "../../daemon/daemon-info.js";
import { statePaths } from "../../daemon/state-root.js";
import { GATEWAY_OPTION_HELP } from "../gateway-client.js";
import { loadPairedCredentials, resolveGatewayTarget } from "../gateway-target.js";
import { RemoteOperatorClient } from "../operator-client.js";
import { certificateAction, checkStanding, operatorCredentials } from "../operator-credentials.js";
import { printResult } from "../output.js";

/** `palyra context`: which gateway operator commands would use, how, and what this device may do there. */
export function registerContextCommand(program: Command): void {
  program
    .command("context")
    .description(
      "which gateway operator commands would talk to (the local daemon with its token, or a gateway with this paired device) and why",
    )
    .option("--state-root <dir>", "state directory")
    .option("--gateway <host:port>", GATEWAY_OPTION_HELP)
    .option("--offline", "do not ask the gateway for this device's role")
    .option("--json", "JSON output")
    .action(async (flags: { stateRoot?: string; gateway?: string; offline?: boolean; json?: boolean }) => {
      const target = await resolveGatewayTarget(flags);
      if (target.kind === "local") {
        const info = readDaemonInfo(statePaths(target.stateRoot).daemonInfo);
        printResult(
          {
            target: "local",
            why: target.reason,
            state_root: target.stateRoot,
            admin_url: info?.admin_url ?? null,
            credential: "the admin token (admin.token)",
            daemon: info ? "running" : "not running",
          },
          { json: flags.json },
        );
        return;
      }
      const stored = await loadPairedCredentials(target.stateRoot);
      const result: Record<string, unknown> = {
        target: "remote",
        why: target.reason,
        state_root: target.stateRoot,
        gateway: target.address,
        credential: "this device's client certificate (mutual TLS)",
      };
      if (stored) {
        const cert = new X509Certificate(stored.clientCertPem);
        result.certificate_expires_at = new Date(cert.validTo).toISOString();
        result.certificate = { use: "valid", renew: "due for renewal", recover: "expired" }[
          certificateAction(stored.clientCertPem, Date.now())
        ];
      } else result.device = "not paired (palyra pair --gateway HOST:PORT --code CODE)";
      if (stored && !flags.offline) {
        let client: RemoteOperatorClient | undefined;
        try {
          client = new RemoteOperatorClient(
            target.address,
            await operatorCredentials(target.stateRoot, target.address),
            () => checkStanding(target.stateRoot, target.address),
          );
          const me = await client.whoAmI();
          result.device_id = me.device_id;
          result.device_name = me.device_name;
          result.role = me.role ?? "none";
          result.gateway_id = me.gateway_id;
        } catch (err) {
          result.gateway_says = (err as Error).message;
        } finally {
          client?.close();
        }
      }
      printResult(result, { json: flags.json });
    });
}
