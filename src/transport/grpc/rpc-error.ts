import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { ExitCode, PalyraError } from "../../common/errors.js";

/** gRPC status codes (the numbers are the wire values). */
export const RpcStatus = grpcStatus;
export type RpcStatus = grpcStatus;

const EXIT_CODES: Partial<Record<RpcStatus, ExitCode>> = {
  [RpcStatus.INVALID_ARGUMENT]: ExitCode.usage,
  [RpcStatus.OUT_OF_RANGE]: ExitCode.usage,
  [RpcStatus.UNAUTHENTICATED]: ExitCode.authentication,
  [RpcStatus.PERMISSION_DENIED]: ExitCode.denied,
  [RpcStatus.NOT_FOUND]: ExitCode.notFound,
  [RpcStatus.FAILED_PRECONDITION]: ExitCode.precondition,
  [RpcStatus.ALREADY_EXISTS]: ExitCode.precondition,
  [RpcStatus.ABORTED]: ExitCode.precondition,
  [RpcStatus.RESOURCE_EXHAUSTED]: ExitCode.precondition,
  [RpcStatus.UNAVAILABLE]: ExitCode.unreachable,
  [RpcStatus.DEADLINE_EXCEEDED]: ExitCode.unreachable,
  [RpcStatus.CANCELLED]: ExitCode.unreachable,
  [RpcStatus.UNIMPLEMENTED]: ExitCode.unsupported,
};

/**
 * An RPC outcome other than OK. Handlers throw it to answer with a status (its message is sent to the
 * peer as the status details, so it must hold no secrets); clients reject with it. `code` is the status
 * name (`PERMISSION_DENIED`), `status` its number.
 */
export class RpcError extends PalyraError {
  readonly status: RpcStatus;

  constructor(status: RpcStatus, message: string, options?: { cause?: unknown }) {
    super("rpc", RpcStatus[status] ?? "UNKNOWN", message, EXIT_CODES[status] ?? ExitCode.internal, options);
    this.status = status;
  }

  override get name(): string {
    return "RpcError";
  }

  /** The status a grpc-js client call failed with, as an RpcError. */
  static fromServiceError(err: Partial<ServiceError> & Error): RpcError {
    const status =
      typeof err.code === "number" && err.code in RpcStatus ? (err.code as RpcStatus) : RpcStatus.UNKNOWN;
    const details = typeof err.details === "string" && err.details !== "" ? err.details : err.message;
    return new RpcError(status, status === RpcStatus.UNAVAILABLE ? reachability(details) : details, {
      cause: err,
    });
  }
}

export function isRpcError(err: unknown, status?: RpcStatus): err is RpcError {
  return err instanceof RpcError && (status === undefined || err.status === status);
}

const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "unknown host",
  EAI_AGAIN: "name lookup failed",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
};

/**
 * grpc-js's text for a connection that could not be made ("No connection established. Last error:
 * connect ECONNREFUSED 127.0.0.1:7444 (...). Resolution note: ...") in our words:
 * "cannot reach the gateway at 127.0.0.1:7444 (connection refused)". Other details pass unchanged.
 */
export function reachability(details: string): string {
  const connecting = /No connection established|Failed to connect|Name resolution failed/i.test(details);
  const last = /Last error: (.*?)(?:\. Resolution note:|$)/s.exec(details)?.[1];
  if (!connecting && last === undefined) return details.replace(/\s*Resolution note:.*$/s, "");
  // A TLS refusal is not "unreachable": keep its words (which certificate, which name).
  if (last !== undefined && /ERR_TLS|CERT|certificate|altnames/i.test(last))
    return `the gateway's TLS certificate was refused: ${last.replace(/^Error\s*(\[[A-Z_]+\])?:?\s*/, "").trim()}`;
  const failure = /\b(E[A-Z_]{3,})\b(?: (\S+))?/.exec(last ?? "");
  const why = failure ? SOCKET_ERRORS[failure[1]!] : undefined;
  if (why === undefined)
    // Not a plain socket failure (a pin mismatch, say): keep its words.
    return last
      ? `cannot connect to the gateway: ${last.replace(/^Error:\s*/, "").trim()}`
      : "cannot reach the gateway";
  const address = failure?.[2]?.replace(/[.,]+$/, "");
  return `cannot reach the gateway${address ? ` at ${address}` : ""} (${why})`;
}
