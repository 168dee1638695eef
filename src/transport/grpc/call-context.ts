import type { Deadline, Metadata, ServerInterceptingCallInterface } from "@grpc/grpc-js";
import type { ConnectionPeer, PeerIdentity } from "../tls/peer-identity.js";
import { RpcError, RpcStatus } from "./rpc-error.js";

/** What a NodePortServer handler learns about its call. */
export interface RpcContext {
  readonly peer: PeerIdentity;
  /** The client's IP address (IPv4-mapped IPv6 given as IPv4) and port: for rate limits and audit. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** `/palyra.v1.PairingService/BeginPairing` */
  readonly method: string;
  /** Deadline in ms since the epoch; Infinity when the client set none. */
  readonly deadline: number;
  /** Aborted when the call ends early: client cancel, deadline, revocation, server shutdown. */
  readonly signal: AbortSignal;
  /** First value of a request metadata key (lowercase), if it is a string. */
  metadata(key: string): string | undefined;
}

/** What the policy interceptor found out about a call, handed to the handler through its metadata. */
export interface CallInfo {
  peer: ConnectionPeer;
  method: string;
  deadline: number;
  /** The call below the policy interceptor: a status sent here goes out at once (revocation). */
  call: ServerInterceptingCallInterface;
}

export type Status = { code: RpcStatus; details: string };

/**
 * A call's AbortSignal, made only when the handler asks for it. Most unary handlers never do, and an
 * AbortController with its signal was one of the largest costs of a small call. Asked for after the
 * call ended, the signal comes already aborted with the reason.
 */
export class LazyAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** The RpcContext of one call; the signal comes from `abort` when first read. */
export class CallContext implements RpcContext {
  readonly peer: PeerIdentity;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly method: string;
  readonly deadline: number;
  readonly #metadata: Metadata;
  readonly #abort: { readonly signal: AbortSignal };

  constructor(info: CallInfo, metadata: Metadata, abort: { readonly signal: AbortSignal }) {
    this.peer = info.peer.identity;
    this.remoteAddress = info.peer.remoteAddress;
    this.remotePort = info.peer.remotePort;
    this.method = info.method;
    this.deadline = info.deadline;
    this.#metadata = metadata;
    this.#abort = abort;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  metadata(key: string): string | undefined {
    const value = this.#metadata.get(key.toLowerCase())[0];
    return typeof value === "string" ? value : undefined;
  }
}

export function deadlineMs(deadline: Deadline): number {
  if (deadline instanceof Date) return deadline.getTime();
  return Number.isFinite(deadline) ? deadline : Number.POSITIVE_INFINITY;
}

/** A request the deserializer could not accept: answered with its status instead of grpc-js's INTERNAL. */
export class RejectedRequest {
  constructor(
    readonly status: RpcStatus,
    readonly details: string,
  ) {}
}

/** Turns a decoding failure into a value the handler wrapper answers with the right status. */
export function tolerantDeserializer(deserialize: (bytes: Buffer) => unknown): (bytes: Buffer) => unknown {
  return (bytes) => {
    try {
      return deserialize(bytes);
    } catch (err) {
      if (err instanceof RpcError) return new RejectedRequest(err.status, err.message);
      return new RejectedRequest(RpcStatus.INVALID_ARGUMENT, "malformed request");
    }
  };
}
