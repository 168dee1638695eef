import { onAbortUntil } from "../common/abort.js";
import { isCanonicalId } from "../common/ids.js";
import { OperatorService } from "../gen/palyra/v1/operator_pb.js";
import type { AccessPolicy } from "../transport/access-policy.js";
import { RpcError, RpcStatus } from "../transport/grpc/rpc-error.js";
import type { NodePortServer, RpcContext } from "../transport/grpc/server.js";
import { type AdminApiDeps, handleAdminApi } from "./admin-api.js";
import { deviceView } from "./device-views.js";

/**
 * OperatorService: the admin API's operations over mutual TLS on the node port, for a paired device
 * holding a role. Each method is one admin route; the server's policy interceptor has already checked
 * the caller's certificate against the allowlist and its role against the method's policy (both read
 * afresh on every call), and the audit log records the caller as `device:<id>`.
 */

/** The admin route one method runs: the same code, limits and JSON as HTTP. */
interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: Record<string, unknown>;
}

/** Which role each method needs: viewers read, operators decide and change. docs/protocol.md lists it. */
export const OPERATOR_POLICY = {
  whoAmI: "device",
  createPairingCode: "operator",
  listPairingCodes: "viewer",
  listPairingRequests: "viewer",
  approvePairingRequest: "operator",
  rejectPairingRequest: "operator",
  listDevices: "viewer",
  describeDevice: "viewer",
  revokeDevice: "operator",
  removeDevice: "operator",
  rotateDevice: "operator",
  setDeviceRole: "operator",
  listNodes: "viewer",
  describeNode: "viewer",
  invokeCapability: "operator",
  queryAudit: "viewer",
  describeVault: "viewer",
  listSecrets: "viewer",
  describeSecret: "viewer",
  revealSecret: "operator",
  setSecret: "operator",
  deleteSecret: "operator",
} as const satisfies Record<string, AccessPolicy>;

/** An id that goes into a route's path: canonical, so it can never name another route. */
function id(value: string, field: string): string {
  if (!isCanonicalId(value))
    throw new RpcError(RpcStatus.INVALID_ARGUMENT, `${field} must be a canonical ULID`);
  return value;
}

/** A secret ref as one path segment. */
function ref(value: string): string {
  if (value.length === 0 || value.length > 256)
    throw new RpcError(RpcStatus.INVALID_ARGUMENT, "ref must be scope/key (1 to 256 characters)");
  return encodeURIComponent(value);
}

/** Optional text: empty (proto3's default) means absent. */
const opt = (value: string) => (value === "" ? undefined : value);
const optNumber = (value: number) => (value === 0 ? undefined : value);
const reasonBody = (reason: string) => (reason === "" ? {} : { reason });

/** The gRPC status for an admin route's HTTP status. */
function grpcStatusFor(httpStatus: number): RpcStatus {
  switch (httpStatus) {
    case 400:
      return RpcStatus.INVALID_ARGUMENT;
    case 401:
      return RpcStatus.UNAUTHENTICATED;
    case 403:
      return RpcStatus.PERMISSION_DENIED;
    case 404:
      return RpcStatus.NOT_FOUND;
    case 409:
      return RpcStatus.FAILED_PRECONDITION;
    case 429:
    case 507:
      return RpcStatus.RESOURCE_EXHAUSTED;
    case 503:
      return RpcStatus.UNAVAILABLE;
    case 504:
      return RpcStatus.DEADLINE_EXCEEDED;
    default:
      return RpcStatus.INTERNAL;
  }
}

export interface OperatorServiceDeps {
  api: AdminApiDeps;
  gatewayId: string;
}

export function registerOperatorService(server: NodePortServer, deps: OperatorServiceDeps): void {
  const { api } = deps;
  const run = async (route: Route, ctx: RpcContext): Promise<{ json: string }> => {
    if (ctx.peer.kind !== "device")
      throw new RpcError(RpcStatus.UNAUTHENTICATED, "a device certificate is needed");
    const url = new URL(route.path, "http://operator.invalid");
    for (const [key, value] of Object.entries(route.query ?? {}))
      if (value !== undefined) url.searchParams.set(key, String(value));
    let answer: { status: number; body: unknown } | undefined;
    const call = {
      method: route.method,
      url,
      body: async () => route.body ?? {},
      // Revoking the caller closes its connection: a capability it started on a node is cancelled.
      signal: ctx.signal,
    };
    const handled = handleAdminApi(
      call,
      (status, body) => {
        answer = { status, body };
      },
      api,
      `device:${ctx.peer.deviceId}`,
    );
    // Revoking the caller closes its connection; a long call (an invoke) ends with it.
    const cut = new Promise<never>((_, reject) =>
      onAbortUntil(ctx.signal, handled, () => reject(new RpcError(RpcStatus.CANCELLED, "the call ended"))),
    );
    await Promise.race([handled, cut]);
    if (!answer) throw new RpcError(RpcStatus.INTERNAL, "the operation gave no answer");
    const { status, body } = answer;
    if (status >= 200 && status < 300) return { json: JSON.stringify(body) };
    const error = (body as { error?: { code?: string; message?: string } }).error;
    // The details start with the stable error code, so a client can tell already_decided from expired.
    throw new RpcError(
      grpcStatusFor(status),
      `${error?.code ?? "error"}: ${error?.message ?? `HTTP ${status}`}`,
    );
  };
  server.addService(
    OperatorService,
    {
      whoAmI: async (_req, ctx) => {
        if (ctx.peer.kind !== "device")
          throw new RpcError(RpcStatus.UNAUTHENTICATED, "a device certificate is needed");
        const device = await api.devices.get(ctx.peer.deviceId);
        if (!device) throw new RpcError(RpcStatus.PERMISSION_DENIED, "the device is no longer paired");
        return {
          json: JSON.stringify({
            ...deviceView(device, api.connections.count(device.deviceId)),
            gateway_id: deps.gatewayId,
            node_address: api.nodeAddress(),
          }),
        };
      },
      createPairingCode: (req, ctx) =>
        run(
          {
            method: "POST",
            path: "/v1/pairing/codes",
            body: {
              method: req.method,
              ...(opt(req.clientKind) === undefined ? {} : { client_kind: req.clientKind }),
              ...(optNumber(req.ttlSeconds) === undefined ? {} : { ttl_seconds: req.ttlSeconds }),
              ...(optNumber(req.maxAttempts) === undefined ? {} : { max_attempts: req.maxAttempts }),
            },
          },
          ctx,
        ),
      listPairingCodes: (_req, ctx) => run({ method: "GET", path: "/v1/pairing/codes" }, ctx),
      listPairingRequests: (_req, ctx) => run({ method: "GET", path: "/v1/pairing/requests" }, ctx),
      approvePairingRequest: (req, ctx) =>
        run(
          {
            method: "POST",
            path: `/v1/pairing/requests/${id(req.requestId, "request_id")}/approve`,
            body: { ...reasonBody(req.reason), ...(req.role === "" ? {} : { role: req.role }) },
          },
          ctx,
        ),
      rejectPairingRequest: (req, ctx) => {
        if (req.role !== "") throw new RpcError(RpcStatus.INVALID_ARGUMENT, "a rejection grants no role");
        return run(
          {
            method: "POST",
            path: `/v1/pairing/requests/${id(req.requestId, "request_id")}/reject`,
            body: reasonBody(req.reason),
          },
          ctx,
        );
      },
      listDevices: (req, ctx) =>
        run(
          {
            method: "GET",
            path: "/v1/devices",
            query: { limit: optNumber(req.limit), after: opt(req.after), q: opt(req.search) },
          },
          ctx,
        ),
      describeDevice: (req, ctx) =>
        run({ method: "GET", path: `/v1/devices/${id(req.deviceId, "device_id")}` }, ctx),
      revokeDevice: (req, ctx) =>
        run(
          {
            method: "POST",
            path: `/v1/devices/${id(req.deviceId, "device_id")}/revoke`,
            body: reasonBody(req.reason),
          },
          ctx,
        ),
      removeDevice: (req, ctx) =>
        run({ method: "POST", path: `/v1/devices/${id(req.deviceId, "device_id")}/remove` }, ctx),
      rotateDevice: (req, ctx) =>
        run(
          {
            method: "POST",
            path: `/v1/devices/${id(req.deviceId, "device_id")}/rotate`,
            body: reasonBody(req.reason),
          },
          ctx,
        ),
      setDeviceRole: (req, ctx) =>
        run(
          {
            method: "POST",
            path: `/v1/devices/${id(req.deviceId, "device_id")}/role`,
            body: { role: req.role },
          },
          ctx,
        ),
      listNodes: (req, ctx) =>
        run(
          {
            method: "GET",
            path: "/v1/nodes",
            query: { limit: optNumber(req.limit), after: opt(req.after), q: opt(req.search) },
          },
          ctx,
        ),
      describeNode: (req, ctx) =>
        run({ method: "GET", path: `/v1/nodes/${id(req.deviceId, "device_id")}` }, ctx),
      invokeCapability: (req, ctx) => {
        let input: unknown = null;
        if (req.inputJson !== "") {
          try {
            input = JSON.parse(req.inputJson);
          } catch {
            throw new RpcError(RpcStatus.INVALID_ARGUMENT, "input_json is not JSON");
          }
        }
        return run(
          {
            method: "POST",
            path: `/v1/nodes/${id(req.deviceId, "device_id")}/invoke`,
            body: {
              capability: req.capability,
              input,
              ...(req.timeoutSeconds === 0 ? {} : { timeout_seconds: req.timeoutSeconds }),
              ...(req.maxPayloadBytes === 0 ? {} : { max_payload_bytes: req.maxPayloadBytes }),
            },
          },
          ctx,
        );
      },
      queryAudit: (req, ctx) =>
        run(
          {
            method: "GET",
            path: "/v1/audit",
            query: {
              kind: opt(req.kind),
              before: opt(req.before),
              limit: optNumber(req.limit),
              device: opt(req.deviceId),
              since: req.sinceUnixMs === 0n ? undefined : String(req.sinceUnixMs),
            },
          },
          ctx,
        ),
      describeVault: (_req, ctx) => run({ method: "GET", path: "/v1/vault" }, ctx),
      listSecrets: (req, ctx) =>
        run({ method: "GET", path: "/v1/secrets", query: { scope: opt(req.scope) } }, ctx),
      describeSecret: (req, ctx) => run({ method: "GET", path: `/v1/secrets/${ref(req.ref)}` }, ctx),
      revealSecret: (req, ctx) =>
        run(
          { method: "POST", path: `/v1/secrets/${ref(req.ref)}/reveal`, body: reasonBody(req.reason) },
          ctx,
        ),
      setSecret: (req, ctx) => {
        const value = Buffer.from(req.value);
        try {
          return run(
            {
              method: "PUT",
              path: `/v1/secrets/${ref(req.ref)}`,
              body: {
                value_base64: value.toString("base64"),
                ...(req.allowEmpty ? { allow_empty: true } : {}),
              },
            },
            ctx,
          );
        } finally {
          value.fill(0);
        }
      },
      deleteSecret: (req, ctx) => run({ method: "DELETE", path: `/v1/secrets/${ref(req.ref)}` }, ctx),
    },
    OPERATOR_POLICY,
  );
}
