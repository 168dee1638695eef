import type { Command } from "commander";
import { CommonError } from "../../common/errors.js";
import { isCanonicalId } from "../../common/ids.js";
import { parseBoundedJson } from "../../common/json-depth.js";
import { limits } from "../../common/limits.js";
import type { DeviceView } from "../../daemon/device-views.js";
import { GATEWAY_OPTION_HELP, gatewayClient } from "../gateway-client.js";
import { type PageFlags, readPages, withPaging } from "../list-pages.js";
import { printResult } from "../output.js";
import { table } from "../table.js";

interface Common {
  stateRoot?: string;
  gateway?: string;
  json?: boolean;
}

interface NodeView {
  device_id: string;
  presence: string;
  platform: string;
  version: string;
  capabilities: { name: string }[];
}

interface NodeDetail extends Omit<NodeView, "capabilities"> {
  last_seen_at: string;
  in_flight: number;
  capabilities: { name: string; requires_mediation: boolean; description: string }[];
  recent_requests: {
    request_id: string;
    capability: string;
    state: string;
    created_at: string;
    error: string | null;
  }[];
  device: DeviceView | null;
}

/** The capability input: JSON, at most the largest payload, nested at most limits.maxJsonDepth. */
async function parseInput(flags: { inputJson?: string; inputStdin?: boolean }): Promise<unknown> {
  if (flags.inputJson !== undefined && flags.inputStdin)
    throw new CommonError("invalid_input", "give --input-json or --input-stdin, not both");
  const text = flags.inputStdin ? await readStdin(limits.invokeMaxPayloadBytes) : (flags.inputJson ?? "null");
  return parseBoundedJson(text, "the input");
}

async function readStdin(maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new CommonError("invalid_input", `the input is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new CommonError("invalid_input", "the input is not valid UTF-8");
  }
}

export function registerNodesCommands(program: Command): void {
  const nodes = program
    .command("nodes")
    .description("registered nodes: list, describe, invoke their capabilities");
  const withCommon = (cmd: Command) =>
    cmd
      .option("--state-root <dir>", "state directory of the daemon (or of this paired device)")
      .option("--gateway <host:port>", GATEWAY_OPTION_HELP)
      .option("--json", "JSON output");

  withCommon(
    withPaging(
      nodes.command("list").description("nodes with presence (online, stale, offline) and capabilities"),
    ),
  ).action(async (flags: Common & PageFlags) => {
    const client = await gatewayClient(flags);
    const { rows: list, nextAfter, total } = await readPages<NodeView>(client, "/v1/nodes", "nodes", flags);
    if (flags.json) return printResult({ nodes: list, next_after: nextAfter, total }, { json: true });
    const rows = list.map((n) => ({ ...n, capabilities: n.capabilities.map((c) => c.name).join(",") }));
    process.stdout.write(table(rows, ["device_id", "presence", "platform", "version", "capabilities"]));
    if (nextAfter) process.stdout.write(`${total} in all; next page: --after ${nextAfter}\n`);
  });

  withCommon(
    nodes
      .command("describe <device-id>")
      .description("one node: presence, certificate, capabilities and its latest calls"),
  ).action(async (deviceId: string, flags: Common) => {
    if (!isCanonicalId(deviceId))
      throw new CommonError("invalid_input", "a device id is a canonical ULID (see palyra nodes list)");
    const node = await (await gatewayClient(flags)).request<NodeDetail>("GET", `/v1/nodes/${deviceId}`);
    if (flags.json) return printResult({ ...node }, { json: true });
    const facts: [string, unknown][] = [
      ["device id", node.device_id],
      ["name", node.device?.device_name],
      ["presence", node.presence],
      ["platform", node.platform],
      ["version", node.version],
      ["last seen", node.last_seen_at],
      ["calls in flight", node.in_flight],
      ["device state", node.device?.state],
      ["certificate", node.device?.certificate_fingerprint],
      ["certificate expires", node.device?.certificate_expires_at],
      ["connections", node.device?.connections],
    ];
    const width = Math.max(...facts.map(([k]) => k.length));
    process.stdout.write(facts.map(([k, v]) => `${k.padEnd(width)}  ${v ?? "-"}\n`).join(""));
    process.stdout.write("\ncapabilities\n");
    process.stdout.write(
      table(
        node.capabilities.map((c) => ({ ...c, consent: c.requires_mediation ? "local" : "" })),
        ["name", "consent", "description"],
      ),
    );
    if (node.recent_requests.length > 0) {
      process.stdout.write("\nrecent calls\n");
      process.stdout.write(
        table(node.recent_requests as unknown as Record<string, unknown>[], [
          "request_id",
          "capability",
          "state",
          "created_at",
          "error",
        ]),
      );
    }
  });

  withCommon(
    nodes
      .command("invoke <device-id> <capability>")
      .description("call a capability on a connected node and print its result")
      .option("--input-json <json>", "input as JSON (default null)")
      .option("--input-stdin", "read the JSON input from standard input")
      .option("--timeout <seconds>", "deadline, 1-120 seconds", "30"),
  ).action(
    async (
      deviceId: string,
      capability: string,
      flags: Common & { inputJson?: string; inputStdin?: boolean; timeout: string },
    ) => {
      if (!isCanonicalId(deviceId))
        throw new CommonError("invalid_input", "a device id is a canonical ULID (see palyra nodes list)");
      const timeout = Number(flags.timeout);
      if (!Number.isInteger(timeout))
        throw new CommonError("invalid_input", "--timeout is a whole number of seconds");
      const input = await parseInput(flags);
      const result = await (await gatewayClient(flags)).request<{
        request_id: string;
        state: string;
        output: unknown;
        error: string | null;
      }>(
        "POST",
        `/v1/nodes/${deviceId}/invoke`,
        { capability, input, timeout_seconds: timeout },
        // The daemon answers when the call ends, at the latest at its deadline.
        { timeoutMs: timeout * 1000 + 10_000 },
      );
      if (flags.json) printResult({ ...result }, { json: true });
      else if (result.state === "succeeded")
        process.stdout.write(`${JSON.stringify(result.output, null, 2)}\n`);
      if (result.state !== "succeeded")
        throw Object.assign(
          new CommonError(
            // A node that refused by its local policy (mediation) says "denied ...": exit 6, not 7.
            /^denied\b/.test(result.error ?? "") ? "denied" : "precondition",
            `the call ended ${result.state}: ${result.error ?? "no detail"}`,
          ),
          {
            alreadyPrinted: flags.json,
          },
        );
    },
  );
}
