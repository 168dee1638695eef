import type { Command } from "commander";
import { CommonError } from "../../common/errors.js";
import { isCanonicalId } from "../../common/ids.js";
import { limits } from "../../common/limits.js";
import type { DeviceView } from "../../daemon/device-views.js";
import { GATEWAY_OPTION_HELP, gatewayClient } from "../gateway-client.js";
import { type PageFlags, readPages, withPaging } from "../list-pages.js";
import { printResult } from "../output.js";
import { formatRemaining, Spinner } from "../spinner.js";
import { table } from "../table.js";

interface Common {
  stateRoot?: string;
  gateway?: string;
  json?: boolean;
}

function deviceId(value: string): string {
  if (!isCanonicalId(value))
    throw new CommonError("invalid_input", "a device id is a canonical ULID (see palyra devices list)");
  return value;
}

export function registerDevicesCommands(program: Command): void {
  const devices = program
    .command("devices")
    .description("paired devices: list, rotate, revoke (cuts them off at once), remove");
  const withCommon = (cmd: Command) =>
    cmd
      .option("--state-root <dir>", "state directory of the daemon (or of this paired device)")
      .option("--gateway <host:port>", GATEWAY_OPTION_HELP)
      .option("--json", "JSON output");

  withCommon(
    withPaging(devices.command("list").description("paired and revoked devices with their live connections")),
  ).action(async (flags: Common & PageFlags) => {
    const client = await gatewayClient(flags);
    const {
      rows: list,
      nextAfter,
      total,
    } = await readPages<DeviceView>(client, "/v1/devices", "devices", flags);
    if (flags.json) return printResult({ devices: list, next_after: nextAfter, total }, { json: true });
    process.stdout.write(
      table(list as unknown as Record<string, unknown>[], [
        "device_id",
        "state",
        "device_name",
        "client_kind",
        "role",
        "connections",
        "certificate_expires_at",
      ]),
    );
    if (nextAfter) process.stdout.write(`${total} in all; next page: --after ${nextAfter}\n`);
  });

  withCommon(
    devices.command("describe <device-id>").description("one device: its certificate, role and connections"),
  ).action(async (id: string, flags: Common) => {
    const device = await (await gatewayClient(flags)).request<Record<string, unknown>>(
      "GET",
      `/v1/devices/${deviceId(id)}`,
    );
    printResult(device, { json: flags.json });
  });

  withCommon(
    devices
      .command("revoke <device-id>")
      .description("revoke a device: its certificates stop working and its live connections close now")
      .option("--reason <text>", "recorded in the audit log"),
  ).action(async (id: string, flags: Common & { reason?: string }) => {
    const result = await (await gatewayClient(flags)).request<Record<string, unknown>>(
      "POST",
      `/v1/devices/${deviceId(id)}/revoke`,
      flags.reason === undefined ? {} : { reason: flags.reason },
    );
    printResult(result, { json: flags.json });
  });

  withCommon(
    devices
      .command("rotate <device-id>")
      .description(
        "ask a connected node to renew its certificate now; the old one is accepted for 5 more minutes",
      )
      .option("--reason <text>", "recorded in the audit log"),
  ).action(async (id: string, flags: Common & { reason?: string }) => {
    const spinner = new Spinner();
    const until = Date.now() + limits.rotateWaitMs;
    spinner.start(() => `waiting for the node to renew (${formatRemaining(until - Date.now())} left)`);
    try {
      const result = await (await gatewayClient(flags)).request<Record<string, unknown>>(
        "POST",
        `/v1/devices/${deviceId(id)}/rotate`,
        flags.reason === undefined ? {} : { reason: flags.reason },
        { timeoutMs: limits.rotateWaitMs + 10_000 },
      );
      spinner.stop();
      printResult(result, { json: flags.json });
    } finally {
      spinner.stop();
    }
  });

  withCommon(
    devices
      .command("set-role <device-id> <role>")
      .description(
        "give a cli or desktop device a role: operator (decides and changes), viewer (reads), or none",
      ),
  ).action(async (id: string, role: string, flags: Common) => {
    if (!["operator", "viewer", "none"].includes(role))
      throw new CommonError("invalid_input", "the role is operator, viewer or none");
    const result = await (await gatewayClient(flags)).request<Record<string, unknown>>(
      "POST",
      `/v1/devices/${deviceId(id)}/role`,
      { role },
    );
    printResult(result, { json: flags.json });
  });

  withCommon(
    devices
      .command("remove <device-id>")
      .description("forget a device (revoking it first); it may then pair again"),
  ).action(async (id: string, flags: Common) => {
    const result = await (await gatewayClient(flags)).request<Record<string, unknown>>(
      "POST",
      `/v1/devices/${deviceId(id)}/remove`,
      {},
    );
    printResult(result, { json: flags.json });
  });
}
