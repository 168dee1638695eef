import { CommonError, defineErrorFamily, ExitCode } from "../common/errors.js";
import { splitHostPort } from "../common/host-port.js";
import { StorageError } from "../common/storage-errors.js";
import { OperatorService } from "../gen/palyra/v1/operator_pb.js";
import { NodePortClient } from "../transport/grpc/client.js";
import { RpcError, RpcStatus } from "../transport/grpc/rpc-error.js";
import type { ServiceClient } from "../transport/grpc/service-definition.js";
import { AdminClientError } from "./admin-client.js";
import type { OperatorCredentials } from "./operator-credentials.js";

/** What operator commands call: the local admin API (AdminClient) or a gateway's OperatorService. */
export interface GatewayApi {
  request<T>(
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    body?: unknown,
    options?: { timeoutMs?: number },
  ): Promise<T>;
  close?(): void;
}

/** Refusals that are the gateway's policy rather than a failure: exit 6. */
export class OperatorClientError extends defineErrorFamily("operator", {
  denied: ExitCode.denied,
}) {}

type Rpc = ServiceClient<typeof OperatorService.method>;
type Call = (rpc: Rpc, options: { timeoutMs: number }) => Promise<{ json: string }>;

const str = (value: unknown) => (typeof value === "string" ? value : "");
const num = (value: string | null) => (value === null ? 0 : Number(value));

/** The OperatorService method for one admin route (the inverse of the gateway's operator-service.ts). */
function callFor(method: string, url: URL, body: Record<string, unknown>): Call | undefined {
  const p = url.pathname;
  const q = url.searchParams;
  const decision = /^\/v1\/pairing\/requests\/([^/]+)\/(approve|reject)$/.exec(p);
  const detail = /^\/v1\/(devices|nodes)\/([^/]+)$/.exec(p);
  const change = /^\/v1\/devices\/([^/]+)\/(revoke|rotate|remove|role)$/.exec(p);
  const invoke = /^\/v1\/nodes\/([^/]+)\/invoke$/.exec(p);
  const secret = /^\/v1\/secrets\/([^/]+)(\/reveal)?$/.exec(p);
  const page = { limit: num(q.get("limit")), after: q.get("after") ?? "", search: q.get("q") ?? "" };
  if (p === "/v1/pairing/codes" && method === "POST")
    return (rpc, o) =>
      rpc.createPairingCode(
        {
          method: str(body.method),
          clientKind: str(body.client_kind),
          ttlSeconds: Number(body.ttl_seconds ?? 0),
          maxAttempts: Number(body.max_attempts ?? 0),
        },
        o,
      );
  if (p === "/v1/pairing/codes" && method === "GET") return (rpc, o) => rpc.listPairingCodes({}, o);
  if (p === "/v1/pairing/requests" && method === "GET") return (rpc, o) => rpc.listPairingRequests({}, o);
  if (decision && method === "POST") {
    const request = { requestId: decision[1]!, reason: str(body.reason), role: str(body.role) };
    return decision[2] === "approve"
      ? (rpc, o) => rpc.approvePairingRequest(request, o)
      : (rpc, o) => rpc.rejectPairingRequest(request, o);
  }
  if (p === "/v1/devices" && method === "GET") return (rpc, o) => rpc.listDevices(page, o);
  if (p === "/v1/nodes" && method === "GET") return (rpc, o) => rpc.listNodes(page, o);
  if (detail && method === "GET") {
    const deviceId = detail[2]!;
    return detail[1] === "devices"
      ? (rpc, o) => rpc.describeDevice({ deviceId }, o)
      : (rpc, o) => rpc.describeNode({ deviceId }, o);
  }
  if (change && method === "POST") {
    const deviceId = change[1]!;
    const reason = str(body.reason);
    if (change[2] === "revoke") return (rpc, o) => rpc.revokeDevice({ deviceId, reason }, o);
    if (change[2] === "rotate") return (rpc, o) => rpc.rotateDevice({ deviceId, reason }, o);
    if (change[2] === "remove") return (rpc, o) => rpc.removeDevice({ deviceId }, o);
    return (rpc, o) => rpc.setDeviceRole({ deviceId, role: str(body.role) }, o);
  }
  if (invoke && method === "POST")
    return (rpc, o) =>
      rpc.invokeCapability(
        {
          deviceId: invoke[1]!,
          capability: str(body.capability),
          inputJson: JSON.stringify(body.input ?? null),
          timeoutSeconds: Number(body.timeout_seconds ?? 0),
          maxPayloadBytes: Number(body.max_payload_bytes ?? 0),
        },
        o,
      );
  if (p === "/v1/audit" && method === "GET")
    return (rpc, o) =>
      rpc.queryAudit(
        {
          kind: q.get("kind") ?? "",
          before: q.get("before") ?? "",
          limit: num(q.get("limit")),
          deviceId: q.get("device") ?? "",
          sinceUnixMs: BigInt(q.get("since") ?? 0),
        },
        o,
      );
  if (p === "/v1/vault" && method === "GET") return (rpc, o) => rpc.describeVault({}, o);
  if (p === "/v1/secrets" && method === "GET")
    return (rpc, o) => rpc.listSecrets({ scope: q.get("scope") ?? "" }, o);
  if (secret) {
    const ref = decodeURIComponent(secret[1]!);
    if (secret[2] && method === "POST")
      return (rpc, o) => rpc.revealSecret({ ref, reason: str(body.reason) }, o);
    if (secret[2]) return undefined;
    if (method === "GET") return (rpc, o) => rpc.describeSecret({ ref }, o);
    if (method === "DELETE") return (rpc, o) => rpc.deleteSecret({ ref }, o);
    if (method === "PUT") {
      const value =
        typeof body.value_base64 === "string"
          ? Buffer.from(body.value_base64, "base64")
          : Buffer.from(str(body.value), "utf8");
      return (rpc, o) => rpc.setSecret({ ref, value, allowEmpty: body.allow_empty === true }, o);
    }
  }
  return undefined;
}

/** The CLI's error for a failed OperatorService call: the same codes (and exits) as the local admin API. */
function clientError(err: unknown, address: string): Error {
  if (!(err instanceof RpcError)) return err as Error;
  // Details start with the gateway's stable code ("already_decided: ..."), except for the policy's own.
  const coded = /^([a-z_]{2,40}): ([\s\S]*)$/.exec(err.message);
  const code = coded?.[1];
  const message = coded?.[2] ?? err.message;
  if (code === "no_space") return new StorageError("no_space", message);
  switch (err.status) {
    case RpcStatus.PERMISSION_DENIED:
      return new OperatorClientError("denied", `${address} refused: ${message}`, { cause: err });
    case RpcStatus.UNAUTHENTICATED:
      return new AdminClientError("unauthenticated", message, { cause: err });
    case RpcStatus.NOT_FOUND:
      return new AdminClientError("not_found", message, { cause: err });
    case RpcStatus.FAILED_PRECONDITION:
      return new AdminClientError("conflict", message, { cause: err });
    case RpcStatus.INVALID_ARGUMENT:
      return new AdminClientError("rejected", message, { cause: err });
    case RpcStatus.RESOURCE_EXHAUSTED:
      return new AdminClientError("rate_limited", message, { cause: err });
    case RpcStatus.UNAVAILABLE:
    case RpcStatus.DEADLINE_EXCEEDED:
    case RpcStatus.CANCELLED:
      return new AdminClientError("unreachable", `cannot reach the gateway at ${address}: ${message}`, {
        cause: err,
      });
    default:
      return new AdminClientError("server", message, { cause: err });
  }
}

/** Operator commands over mutual TLS with this device's own certificate: no token crosses the network. */
export class RemoteOperatorClient implements GatewayApi {
  readonly address: string;
  readonly deviceId: string;
  readonly #client: NodePortClient;
  readonly #rpc: Rpc;

  readonly #diagnose: (() => Promise<string | undefined>) | undefined;

  /** `diagnose` is asked why a call could not get through (operator-credentials.ts: checkStanding). */
  constructor(address: string, operator: OperatorCredentials, diagnose?: () => Promise<string | undefined>) {
    this.#diagnose = diagnose;
    const { host, port } = splitHostPort(address);
    const { credentials } = operator;
    this.address = address;
    this.deviceId = operator.deviceId;
    this.#client = new NodePortClient({
      host,
      port,
      pinnedCa: credentials.caCertPem,
      clientIdentity: { certChainPem: credentials.clientCertPem, keyPem: credentials.clientKeyPem },
    });
    this.#rpc = this.#client.service(OperatorService);
  }

  async request<T>(
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    body?: unknown,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    const url = new URL(path, "http://operator.invalid");
    const call = callFor(method, url, (body ?? {}) as Record<string, unknown>);
    if (!call) throw new CommonError("internal", `no operator method for ${method} ${url.pathname}`);
    let reply: { json: string };
    try {
      reply = await call(this.#rpc, { timeoutMs: options.timeoutMs ?? 30_000 });
    } catch (err) {
      throw await this.#explain(err);
    }
    try {
      return JSON.parse(reply.json) as T;
    } catch {
      throw new CommonError("internal", "the gateway answered with a reply that is not JSON");
    }
  }

  /**
   * A call that could not get through may mean the gateway refused this device's certificate during
   * the handshake (revoked, removed, replaced): the gateway is asked, and its refusal said instead.
   */
  async #explain(err: unknown): Promise<Error> {
    const error = clientError(err, this.address);
    if (!(err instanceof RpcError) || err.status !== RpcStatus.UNAVAILABLE || !this.#diagnose) return error;
    let note: string | undefined;
    try {
      note = await this.#diagnose();
    } catch (refusal) {
      return refusal as Error;
    }
    return note === undefined ? error : new AdminClientError("unreachable", note, { cause: err });
  }

  /** Who this device is to the gateway (WhoAmI). */
  async whoAmI(): Promise<Record<string, unknown>> {
    try {
      return JSON.parse((await this.#rpc.whoAmI({}, { timeoutMs: 10_000 })).json) as Record<string, unknown>;
    } catch (err) {
      throw await this.#explain(err);
    }
  }

  close(): void {
    this.#client.close();
  }
}
