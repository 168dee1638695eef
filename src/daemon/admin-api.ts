import type { IncomingMessage, ServerResponse } from "node:http";
import QRCode from "qrcode";
import { z } from "zod";
import type { AuditEntry, AuditRecord } from "../common/audit.js";
import { asPalyraError, CommonError, type PalyraError } from "../common/errors.js";
import { isCanonicalId } from "../common/ids.js";
import { parseBoundedJson } from "../common/json-depth.js";
import { limits } from "../common/limits.js";
import { noSpaceError } from "../common/storage-errors.js";
import type { PairedDevice } from "../identity/device-records.js";
import type { DeviceRegistry } from "../identity/device-registry.js";
import { isDemotion, parseRole } from "../identity/device-roles.js";
import { IdentityError } from "../identity/errors.js";
import type { ApprovalService } from "../pairing/approvals.js";
import type { CodeService } from "../pairing/code-service.js";
import { pairCommand } from "../pairing/pair-command.js";
import { auditView } from "../store/sqlite/audit-log.js";
import { handleSecretsApi, type SecretsApiDeps } from "./admin-secrets.js";
import type { DeviceRotations } from "./device-rotations.js";
import { deviceView } from "./device-views.js";
import { pageOf, parsePageQuery } from "./list-page.js";
import type { NodeRuntime } from "./node-runtime/node-runtime.js";

const MAX_BODY_BYTES = 64 * 1024;

/**
 * One admin operation, whichever way it arrived: HTTP from the console or the local CLI (admin-http.ts),
 * or an OperatorService call over mutual TLS (operator-service.ts). Both run the same routes.
 */
export interface AdminCall {
  method: string;
  /** Path and query; the origin is not looked at. */
  url: URL;
  /** The JSON body (`{}` when there is none), refused beyond `maxBytes`. */
  body(maxBytes?: number): Promise<unknown>;
  /** Aborted when the caller goes away: a call it started on a node is cancelled there. */
  signal?: AbortSignal;
}

/** The answer: an HTTP status and a JSON document. */
export type AdminReply = (status: number, body: unknown) => void;

/** An AdminCall for an HTTP request, its body read from the stream only when a route asks for it. */
export function httpAdminCall(req: IncomingMessage, res: ServerResponse, url: URL): AdminCall {
  const gone = new AbortController();
  // The response closes when it is complete (nothing left to cancel then) or the client went away.
  res.once("close", () => gone.abort());
  return {
    method: req.method ?? "GET",
    url,
    body: (maxBytes) => readJson(req, maxBytes),
    signal: gone.signal,
  };
}

const mintBody = z
  .object({
    method: z.enum(["pin", "qr"]),
    client_kind: z.string().optional(),
    ttl_seconds: z.number().int().positive().optional(),
    max_attempts: z.number().int().positive().optional(),
  })
  .strict();
const decisionBody = z.object({ reason: z.string().max(512).optional() }).strict();
const approveBody = z
  .object({ reason: z.string().max(512).optional(), role: z.enum(["operator", "viewer", "none"]).optional() })
  .strict();
const roleBody = z.object({ role: z.enum(["operator", "viewer", "none"]) }).strict();
const invokeBody = z
  .object({
    capability: z.string().min(1).max(64),
    input: z.unknown().optional(),
    timeout_seconds: z.number().int().positive().optional(),
    max_payload_bytes: z.number().int().positive().optional(),
  })
  .strict();

export interface AdminApiDeps {
  codes: CodeService;
  approvals: ApprovalService;
  devices: DeviceRegistry;
  nodes: NodeRuntime;
  rotations: DeviceRotations;
  /** Live connections of a device, and cutting them (revocation takes effect at once). */
  connections: { count(deviceId: string): number; close(deviceId: string, reason: string): number };
  /** host:port that devices dial, put into QR codes. */
  nodeAddress: () => string;
  secrets: SecretsApiDeps;
  audit: {
    /** Newest first; `kind` matches its sub-kinds; `before` is the id that ended the previous page. */
    query(filter: {
      kind?: string;
      before?: string;
      limit: number;
      deviceId?: string;
      since?: number;
    }): Promise<AuditRecord[]>;
    append(entry: AuditEntry): Promise<AuditRecord>;
  };
  /** The gateway database file, named when a write to it fails for want of disk space. */
  databasePath?: string;
}

/** HTTP status for a domain error: the same mapping for every route. */
export function httpStatusOf(err: PalyraError): number {
  switch (err.code) {
    case "scope_denied":
      return 403;
    case "backend_unavailable":
    case "backend_mismatch":
    case "vault_locked":
    case "busy":
      return 503;
    case "blob_corrupt":
    case "wrong_vault_key":
      return 500;
    case "invalid_input":
    case "csr_invalid":
    case "payload_too_large":
      return 400;
    case "queue_full":
      return 429;
    case "request_not_found":
    case "capability_unknown":
    case "not_found":
    case "device_not_found":
      return 404;
    case "renewal_timeout":
      return 504;
    case "no_space":
      return 507;
    case "node_offline":
    case "already_decided":
    case "request_expired":
      return 409;
    case "rate_limited":
      return 429;
    default:
      return err.exitCode === 1 ? 500 : 400;
  }
}

/**
 * Routes under /v1/ (JSON in, JSON out) for an authenticated caller (console-auth.ts): `actor` is what
 * the audit log records. Answers 404 when no route matches.
 */
export async function handleAdminApi(
  call: AdminCall,
  reply: AdminReply,
  deps: AdminApiDeps,
  actor: string,
): Promise<boolean> {
  const url = call.url;
  if (!url.pathname.startsWith("/v1/")) return false;
  try {
    const path = url.pathname;
    if (
      (path === "/v1/vault" || path.startsWith("/v1/secrets")) &&
      (await handleSecretsApi(call, reply, deps.secrets, actor))
    )
      return true;
    if (path === "/v1/pairing/codes" && call.method === "POST") {
      const body = mintBody.parse(await call.body());
      const minted = await deps.codes.mint({
        method: body.method,
        ...(body.client_kind === undefined ? {} : { clientKind: body.client_kind }),
        ...(body.ttl_seconds === undefined ? {} : { ttlMs: body.ttl_seconds * 1000 }),
        ...(body.max_attempts === undefined ? {} : { maxAttempts: body.max_attempts }),
        gateway: deps.nodeAddress(),
        actor,
      });
      // The console shows the QR code as an image; drawn here so the page needs no QR library.
      const qrSvg =
        minted.qr_uri === undefined
          ? undefined
          : await QRCode.toString(minted.qr_uri, { type: "svg", margin: 2 });
      reply(201, {
        ...minted,
        gateway: deps.nodeAddress(),
        device_command: pairCommand({
          clientKind: minted.client_kind,
          gateway: deps.nodeAddress(),
          ...(minted.typed === undefined ? {} : { typed: minted.typed }),
          ...(minted.qr_uri === undefined ? {} : { qrUri: minted.qr_uri }),
        }),
        ...(qrSvg === undefined ? {} : { qr_svg: qrSvg }),
      });
      return true;
    }
    if (path === "/v1/pairing/codes" && call.method === "GET") {
      reply(200, { codes: await deps.codes.list() });
      return true;
    }
    if (path === "/v1/pairing/requests" && call.method === "GET") {
      reply(200, { requests: await deps.approvals.list() });
      return true;
    }
    const decision = /^\/v1\/pairing\/requests\/([0-9A-Z]{26})\/(approve|reject)$/.exec(path);
    if (decision && call.method === "POST") {
      const body: { reason?: string; role?: string } = (
        decision[2] === "approve" ? approveBody : decisionBody
      ).parse(await call.body());
      const role = body.role === undefined ? undefined : parseRole(body.role);
      const options = {
        actor,
        ...(body.reason === undefined ? {} : { reason: body.reason }),
        ...(role === undefined ? {} : { role }),
      };
      const view =
        decision[2] === "approve"
          ? await deps.approvals.approve(decision[1]!, options)
          : await deps.approvals.reject(decision[1]!, options);
      reply(200, view);
      return true;
    }
    if (path === "/v1/nodes" && call.method === "GET") {
      const query = parsePageQuery(url.searchParams);
      // The name an operator gave the device at pairing, beside the node's runtime view.
      const names = new Map((await deps.devices.list()).map((d) => [d.deviceId, d.deviceName]));
      const rows = (await deps.nodes.list()).map((n) => ({
        ...n,
        device_name: names.get(n.device_id) ?? null,
      }));
      const page = pageOf(
        rows,
        (n) => n.device_id,
        (n) => `${n.device_id} ${n.device_name ?? ""} ${n.platform} ${n.presence}`,
        query,
      );
      reply(200, { nodes: page.items, next_after: page.nextAfter, total: page.total });
      return true;
    }
    const nodeDetail = /^\/v1\/nodes\/([0-9A-Z]{26})$/.exec(path);
    if (nodeDetail && call.method === "GET") {
      const detail = await deps.nodes.describe(nodeDetail[1]!);
      const device = await deps.devices.get(detail.device_id);
      reply(200, {
        ...detail,
        device: device
          ? deviceView(device, deps.connections.count(device.deviceId), detail.last_seen_at)
          : null,
      });
      return true;
    }
    const invoke = /^\/v1\/nodes\/([0-9A-Z]{26})\/invoke$/.exec(path);
    if (invoke && call.method === "POST") {
      const body = invokeBody.parse(await call.body());
      let record: Awaited<ReturnType<NodeRuntime["invoke"]>>;
      try {
        record = await deps.nodes.invoke(invoke[1]!, body.capability, JSON.stringify(body.input ?? null), {
          ...(body.timeout_seconds === undefined ? {} : { timeoutMs: body.timeout_seconds * 1000 }),
          ...(body.max_payload_bytes === undefined ? {} : { maxPayloadBytes: body.max_payload_bytes }),
          ...(call.signal ? { signal: call.signal } : {}),
        });
      } catch (err) {
        // Not connected, or never a node at all: describe throws "not found" for the second (404, exit 8).
        if ((err as PalyraError).code === "node_offline") await deps.nodes.describe(invoke[1]!, 0);
        throw err;
      }
      // Who called what, and how it ended; never the input or the output (they may hold secrets).
      await deps.audit.append({
        kind: "node.invoked",
        actor,
        deviceId: invoke[1]!,
        detail: {
          request_id: record.requestId,
          capability: body.capability,
          state: record.state,
          ...(record.error === undefined ? {} : { error: record.error.slice(0, 256) }),
        },
      });
      reply(200, {
        request_id: record.requestId,
        state: record.state,
        output: record.outputJson === undefined ? null : JSON.parse(record.outputJson),
        error: record.error ?? null,
      });
      return true;
    }
    if (path === "/v1/audit" && call.method === "GET") {
      const filter = auditFilter(url.searchParams);
      const events = (await deps.audit.query(filter)).map(auditView);
      // A full page may have more behind it: the next page starts after its last event.
      const nextBefore = events.length === filter.limit ? events[events.length - 1]!.id : null;
      reply(200, { events, next_before: nextBefore });
      return true;
    }
    // A device as operators see it: its live connections, and its node's presence for `last_seen_at`.
    const view = async (d: PairedDevice) =>
      deviceView(d, deps.connections.count(d.deviceId), await deps.nodes.lastSeenOf(d.deviceId));
    if (path === "/v1/devices" && call.method === "GET") {
      const query = parsePageQuery(url.searchParams);
      const page = pageOf(
        await deps.devices.list(),
        (d) => d.deviceId,
        (d) =>
          `${d.deviceId} ${d.deviceName} ${d.clientKind} ${d.platform} ${d.revokedAt === undefined ? "active" : "revoked"}`,
        query,
      );
      reply(200, {
        devices: await Promise.all(page.items.map(view)),
        next_after: page.nextAfter,
        total: page.total,
      });
      return true;
    }
    const device = /^\/v1\/devices\/([0-9A-Z]{26})(?:\/(revoke|remove|rotate|role))?$/.exec(path);
    if (device && call.method === "POST" && device[2] === "role") {
      const body = roleBody.parse(await call.body());
      const before = await deps.devices.get(device[1]!);
      const changed = await deps.devices.setRole(device[1]!, parseRole(body.role), actor);
      await deps.approvals.withdrawFor(changed.deviceId, actor, "its role changed");
      // A demotion ends what the device has in flight under its old role (an invoke, say), as a
      // revocation does: its connections close, and it comes back with only what the new role allows.
      // Not when a device demotes itself: that would cut the answer to this very call.
      if (isDemotion(before?.role, changed.role) && actor !== `device:${changed.deviceId}`)
        deps.connections.close(changed.deviceId, `device role changed to ${changed.role ?? "none"}`);
      reply(200, await view(changed));
      return true;
    }
    if (device && call.method === "GET" && device[2] === undefined) {
      const found = await deps.devices.get(device[1]!);
      if (!found) throw new IdentityError("device_not_found", `no paired device ${device[1]}`);
      reply(200, await view(found));
      return true;
    }
    if (device && call.method === "POST" && device[2] === "revoke") {
      const body = decisionBody.parse(await call.body());
      const reason = body.reason ?? "revoked by operator";
      const revoked = await deps.devices.revoke(device[1]!, reason, actor);
      await deps.approvals.withdrawFor(revoked.deviceId, actor, "revoked");
      const closed = deps.connections.close(revoked.deviceId, `device revoked: ${reason}`);
      reply(200, {
        ...deviceView(revoked, 0, await deps.nodes.lastSeenOf(revoked.deviceId)),
        connections_closed: closed,
      });
      return true;
    }
    if (device && call.method === "POST" && device[2] === "rotate") {
      const body = decisionBody.parse(await call.body());
      const { device: rotated, previousFingerprint } = await deps.rotations.rotate(
        device[1]!,
        body.reason ?? "rotation requested by operator",
        limits.rotateWaitMs,
      );
      reply(200, {
        ...(await view(rotated)),
        rotated_from: previousFingerprint,
      });
      return true;
    }
    if (device && call.method === "POST" && device[2] === "remove") {
      const existing = await deps.devices.get(device[1]!);
      if (!existing) throw new IdentityError("device_not_found", `no paired device ${device[1]}`);
      // Removing an active device also revokes its certificates first: it must not keep working.
      if (existing.revokedAt === undefined)
        await deps.devices.revoke(existing.deviceId, "removed by operator", actor);
      const closed = deps.connections.close(existing.deviceId, "device removed");
      await deps.devices.remove(existing.deviceId, actor);
      await deps.approvals.withdrawFor(existing.deviceId, actor, "removed");
      reply(200, { device_id: existing.deviceId, removed: true, connections_closed: closed });
      return true;
    }
    reply(404, { error: { code: "not_found", message: `no route for ${call.method} ${path}` } });
  } catch (err) {
    if (err instanceof z.ZodError) {
      const message = err.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
      reply(400, { error: { code: "invalid_input", message } });
    } else {
      // A full disk is said as such (507), naming the file; the database is what most routes write.
      const error =
        noSpaceError(err, deps.databasePath, deps.databasePath ?? "the gateway database (palyra.db)") ??
        asPalyraError(err);
      // Unexpected failures are logged by the caller and answered without their inner details.
      if (error.code === "internal") throw err;
      reply(httpStatusOf(error), { error: error.toJSON() });
    }
  }
  return true;
}

/**
 * `GET /v1/audit`'s query: `limit` 1..1000 (default 200), `kind` a kind or its prefix, `before` an id,
 * `device` a device id, `since` ms since the epoch.
 */
function auditFilter(params: URLSearchParams): {
  kind?: string;
  before?: string;
  limit: number;
  deviceId?: string;
  since?: number;
} {
  const limitText = params.get("limit");
  if (limitText !== null && !/^[0-9]{1,9}$/.test(limitText))
    throw new CommonError("invalid_input", "limit must be a whole number (pages hold 1 to 1000 events)");
  const limit = Math.min(Math.max(limitText === null ? 200 : Number(limitText), 1), 1000);
  const kind = params.get("kind") ?? "";
  if (kind !== "" && !/^[a-z][a-z0-9_]{0,63}(?:\.[a-z][a-z0-9_]{0,63}){0,3}$/.test(kind))
    throw new CommonError("invalid_input", "kind must be an event kind such as pairing or device.revoked");
  const before = params.get("before");
  if (before !== null && !isCanonicalId(before))
    throw new CommonError("invalid_input", "before must be an audit event id (a canonical ULID)");
  const device = params.get("device");
  if (device !== null && !isCanonicalId(device))
    throw new CommonError("invalid_input", "device must be a device id (a canonical ULID)");
  const since = params.get("since");
  if (since !== null && !/^[0-9]{1,15}$/.test(since))
    throw new CommonError("invalid_input", "since is a time in ms since the epoch");
  return {
    limit,
    ...(kind ? { kind } : {}),
    ...(before === null ? {} : { before }),
    ...(device === null ? {} : { deviceId: device }),
    ...(since === null ? {} : { since: Number(since) }),
  };
}

/**
 * A request's JSON body: at most `maxBytes`, strict UTF-8 (bytes that are not are refused, never turned
 * into U+FFFD), and nested at most `limits.maxJsonDepth` levels below the body's own object. An empty
 * body reads as `{}`. Bad bodies are invalid input (400).
 */
export async function readJson(req: AsyncIterable<unknown>, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new CommonError("invalid_input", `the body is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new CommonError("invalid_input", "the body is not valid UTF-8");
  }
  return parseBoundedJson(text, "the body", 1);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(json),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  res.end(json);
}
