import type { Command } from "commander";
import QRCode from "qrcode";
import { CommonError } from "../../common/errors.js";
import type { PairingRequestView } from "../../pairing/approvals.js";
import type { CodeView, MintedCode } from "../../pairing/code-service.js";
import { GATEWAY_OPTION_HELP, gatewayClient } from "../gateway-client.js";
import { printResult } from "../output.js";
import { table } from "../table.js";

interface Common {
  stateRoot?: string;
  gateway?: string;
  json?: boolean;
}

/** "10m", "90s", "2h" or plain seconds. */
export function parseDuration(text: string): number {
  const match = /^([0-9]+)\s*(s|m|h)?$/.exec(text.trim());
  if (!match) throw new CommonError("invalid_input", `not a duration: ${text} (use e.g. 90s, 10m, 2h)`);
  const unit = { s: 1, m: 60, h: 3600 }[(match[2] ?? "s") as "s" | "m" | "h"];
  return Number(match[1]) * unit;
}

export function registerPairingCommands(program: Command): void {
  const pairing = program
    .command("pairing")
    .description("pairing codes and requests (talks to the local daemon)");
  const withCommon = (cmd: Command) =>
    cmd
      .option("--state-root <dir>", "state directory of the daemon (or of this paired device)")
      .option("--gateway <host:port>", GATEWAY_OPTION_HELP)
      .option("--json", "JSON output");

  withCommon(
    pairing
      .command("code")
      .description("mint a pairing code: a PIN (typed as <code-id>-<pin>) or a QR code; shown once")
      .option("--method <method>", "pin or qr", "pin")
      .option("--client-kind <kind>", "kind of device allowed to use it (node, cli, desktop)", "node")
      .option("--ttl <duration>", "lifetime, 1m to 24h", "10m")
      .option("--max-attempts <n>", "failed attempts before the code dies (1-20)", "5"),
  ).action(
    async (flags: Common & { method: string; clientKind: string; ttl: string; maxAttempts: string }) => {
      if (flags.method !== "pin" && flags.method !== "qr")
        throw new CommonError("invalid_input", "--method is pin or qr");
      const maxAttempts = Number(flags.maxAttempts);
      if (!Number.isInteger(maxAttempts))
        throw new CommonError("invalid_input", "--max-attempts must be a whole number");
      const minted = await (await gatewayClient(flags)).request<
        MintedCode & { gateway: string; device_command: string }
      >("POST", "/v1/pairing/codes", {
        method: flags.method,
        client_kind: flags.clientKind,
        ttl_seconds: parseDuration(flags.ttl),
        max_attempts: maxAttempts,
      });
      if (flags.json) return printResult({ ...minted }, { json: true });
      if (minted.method === "pin") {
        process.stdout.write(`pairing code  ${minted.typed}\n`);
      } else {
        process.stdout.write(await QRCode.toString(minted.qr_uri!, { type: "terminal", small: true }));
        process.stdout.write(`qr uri        ${minted.qr_uri}\n`);
      }
      process.stdout.write(
        `code id       ${minted.code_id}\nclient kind   ${minted.client_kind}\nexpires at    ${minted.expires_at}\n`,
      );
      process.stdout.write(`This is shown once. On the device:\n  ${minted.device_command}\n`);
    },
  );

  withCommon(pairing.command("list").description("pairing requests and codes (no secrets)")).action(
    async (flags: Common) => {
      const client = await gatewayClient(flags);
      const { requests } = await client.request<{ requests: PairingRequestView[] }>(
        "GET",
        "/v1/pairing/requests",
      );
      const { codes } = await client.request<{ codes: CodeView[] }>("GET", "/v1/pairing/codes");
      if (flags.json) return printResult({ requests, codes }, { json: true });
      process.stdout.write("requests\n");
      process.stdout.write(
        table(
          // Approved but not delivered yet: the device has not come back for its certificate.
          requests.map((r) => ({
            ...r,
            state: r.state === "approved" ? "approved (not collected)" : r.state,
          })) as unknown as Record<string, unknown>[],
          [
            "request_id",
            "state",
            "device_name",
            "client_kind",
            "comparison_code",
            "source_address",
            "expires_at",
          ],
        ),
      );
      process.stdout.write("\ncodes\n");
      process.stdout.write(
        table(codes as unknown as Record<string, unknown>[], [
          "code_id",
          "method",
          "client_kind",
          "state",
          "failed_attempts",
          "expires_at",
        ]),
      );
    },
  );

  for (const verb of ["approve", "reject"] as const) {
    withCommon(
      pairing
        .command(`${verb} <request-id>`)
        .description(`${verb} a pending pairing request`)
        .option("--reason <text>", "recorded with the decision")
        .option(
          "--role <role>",
          verb === "approve"
            ? "operator (may decide and change) or viewer (may read) for a cli or desktop device; none by default"
            : "(approve only)",
        ),
    ).action(async (requestId: string, flags: Common & { reason?: string; role?: string }) => {
      if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(requestId))
        throw new CommonError("invalid_input", "request id must be a canonical ULID");
      if (
        flags.role !== undefined &&
        (verb !== "approve" || !["operator", "viewer", "none"].includes(flags.role))
      )
        throw new CommonError(
          "invalid_input",
          verb === "approve" ? "--role is operator, viewer or none" : "--role goes with approve",
        );
      const view = await (await gatewayClient(flags)).request<PairingRequestView>(
        "POST",
        `/v1/pairing/requests/${requestId}/${verb}`,
        {
          ...(flags.reason === undefined ? {} : { reason: flags.reason }),
          ...(flags.role === undefined ? {} : { role: flags.role }),
        },
      );
      printResult({ ...view }, { json: flags.json });
    });
  }
}
