import { existsSync } from "node:fs";
import type { Command } from "commander";
import { systemClock } from "../../common/clock.js";
import { CommonError } from "../../common/errors.js";
import { isCanonicalId } from "../../common/ids.js";
import { systemRandom } from "../../common/random.js";
import { configFromEnv, readConfigFile, resolveConfig } from "../../daemon/config.js";
import { resolveStateRoot, statePaths } from "../../daemon/state-root.js";
import { openGatewayStore } from "../../store/gateway-store.js";
import type { GatewayStore } from "../../store/ports.js";
import { openPostgresStore } from "../../store/postgres/gateway-store.js";
import { auditView } from "../../store/sqlite/audit-log.js";
import { GATEWAY_OPTION_HELP, gatewayClient } from "../gateway-client.js";
import { resolveGatewayTarget } from "../gateway-target.js";
import { printResult } from "../output.js";
import { table } from "../table.js";
import { parseDuration } from "./pairing.js";

interface AuditFlags {
  stateRoot?: string;
  gateway?: string;
  kind?: string;
  since?: string;
  device?: string;
  before?: string;
  limit: string;
  json?: boolean;
  ndjson?: boolean;
}

/** An ISO 8601 time, or a duration back from now ("2h", "30m", "90s"). */
function parseSince(text: string, now: number): number {
  const at = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(at)) return at;
  try {
    return now - parseDuration(text) * 1000;
  } catch {
    throw new CommonError(
      "invalid_input",
      `--since is an ISO 8601 time or a duration such as 2h (got ${text})`,
    );
  }
}

/**
 * `palyra audit`: the gateway's audit log, read directly from its database (like `secrets`, it works
 * with or without a running daemon; SQLite in WAL mode lets both read and write at once).
 */
export function registerAuditCommand(program: Command): void {
  program
    .command("audit")
    .description("the audit log, newest first: pairings, approvals, revocations, invocations, reveals")
    .option("--kind <kind>", "only this kind and its sub-kinds (pairing, device.revoked, node.invoked, ...)")
    .option("--since <time>", "only events since an ISO 8601 time, or a duration back from now (2h, 30m)")
    .option("--device <id>", "only events about this device")
    .option("--before <id>", "only events older than this event id (the next page after --limit)")
    .option("--limit <n>", "at most this many events (1-10000)", "100")
    .option("--state-root <dir>", "state directory of the gateway (or of this paired device)")
    .option("--gateway <host:port>", GATEWAY_OPTION_HELP)
    .option("--json", "one JSON document: {events: [...]}")
    .option("--ndjson", "one JSON object per line")
    .action(async (flags: AuditFlags) => {
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
        throw new CommonError("invalid_input", "--limit is a whole number from 1 to 10000");
      if (flags.kind !== undefined && !/^[a-z_]+(\.[a-z_]+)*$/.test(flags.kind))
        throw new CommonError("invalid_input", "--kind looks like pairing or device.revoked");
      if (flags.device !== undefined && !isCanonicalId(flags.device))
        throw new CommonError("invalid_input", "--device is a canonical ULID (see palyra devices list)");
      if (flags.before !== undefined && !isCanonicalId(flags.before))
        throw new CommonError(
          "invalid_input",
          "--before is an event id (a canonical ULID) from an earlier page",
        );
      const since = flags.since ? parseSince(flags.since, Date.now()) : undefined;
      const paths = statePaths(resolveStateRoot(flags.stateRoot));
      // Another gateway's log (OperatorService.QueryAudit, with this device's certificate): when asked
      // for, or when this state root has no gateway database but a paired operator device.
      const target = await resolveGatewayTarget(flags);
      if (
        target.kind === "remote" &&
        (flags.gateway !== undefined || Boolean(process.env.PALYRA_GATEWAY) || !existsSync(paths.database))
      ) {
        const client = await gatewayClient(flags);
        const events: Record<string, unknown>[] = [];
        let before = flags.before;
        while (events.length < limit) {
          const params = new URLSearchParams({ limit: String(Math.min(1000, limit - events.length)) });
          if (flags.kind) params.set("kind", flags.kind);
          if (flags.device) params.set("device", flags.device);
          if (since !== undefined) params.set("since", String(since));
          if (before) params.set("before", before);
          const page = await client.request<{
            events: Record<string, unknown>[];
            next_before: string | null;
          }>("GET", `/v1/audit?${params}`);
          events.push(...page.events);
          if (!page.next_before) break;
          before = page.next_before;
        }
        return printEvents(events as unknown as ReturnType<typeof auditView>[], flags);
      }
      // A gateway of a cluster keeps its audit log in the shared database its configuration names.
      const databaseUrl = resolveConfig(readConfigFile(paths.config), configFromEnv(process.env)).database
        .url;
      if (!databaseUrl && !existsSync(paths.database))
        throw new CommonError("not_found", `no gateway database at ${paths.database}; start the daemon once`);
      const store: GatewayStore = databaseUrl
        ? await openPostgresStore(databaseUrl, systemClock, systemRandom)
        : openGatewayStore(paths.database, systemClock, systemRandom);
      try {
        const events = (
          await store.audit.query({
            limit,
            ...(flags.kind ? { kind: flags.kind } : {}),
            ...(since === undefined ? {} : { since }),
            ...(flags.device ? { deviceId: flags.device } : {}),
            ...(flags.before ? { before: flags.before } : {}),
          })
        ).map(auditView);
        printEvents(events, flags);
      } finally {
        await store.close();
      }
    });
}

function printEvents(events: ReturnType<typeof auditView>[], flags: AuditFlags): void {
  if (flags.ndjson) {
    for (const event of events) process.stdout.write(`${JSON.stringify(event)}\n`);
    return;
  }
  if (flags.json) {
    printResult({ events }, { json: true });
    return;
  }
  process.stdout.write(
    table(
      events.map((e) => ({ ...e, device_id: e.device_id ?? "", detail: JSON.stringify(e.detail) })),
      ["at", "kind", "actor", "device_id", "detail"],
    ),
  );
}
