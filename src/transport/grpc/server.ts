import type { AddressInfo } from "node:net";
import type { DescMessage, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  type ConnectionInjector,
  type Deadline,
  type Metadata,
  type MethodDefinition,
  Server,
  ServerCredentials,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { type Clock, systemClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { TransportError } from "../errors.js";
import { ConnectionRegistry } from "../tls/connection-registry.js";
import type { ConnectionPeer, PeerIdentity } from "../tls/peer-identity.js";
import {
  type AuthorizePeer,
  NodePortTlsServer,
  type ServerIdentitySource,
  type TlsIdentity,
  type TlsServerEvent,
} from "../tls/tls-server.js";
import { RpcError, RpcStatus } from "./rpc-error.js";
import { serviceDefinition, type UnaryMethodNames } from "./service-definition.js";

/**
 * The gateway's node port: a grpc-js server fed by our own TLS server through a connection injector
 * (DESIGN sections 2 and 6). Every method has an access policy, checked by one interceptor before the
 * request is read:
 * - `anonymous`: any accepted connection (pairing);
 * - `device`: a device certificate is required (UNAUTHENTICATED without one), and the allowlist is
 *   checked again on every call (PERMISSION_DENIED once the device or certificate is no longer trusted).
 * Handlers are plain async functions of (request, context); the context carries the peer identity and
 * the remote address. Throw RpcError to answer with a status; anything else becomes INTERNAL.
 */

export type RpcPolicy = "anonymous" | "device";
export type ServerState = "idle" | "listening" | "closing" | "closed";

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

export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: RpcContext,
) => Promise<MessageInitShape<O>> | MessageInitShape<O>;

/** One handler per unary method of the service (streaming methods are not served yet). */
export type ServiceHandlers<R extends GenServiceMethods> = {
  [K in UnaryMethodNames<R>]: UnaryHandler<R[K]["input"], R[K]["output"]>;
};

/** An explicit policy for every method of the service: there is no default. */
export type ServicePolicy<R extends GenServiceMethods> = { readonly [K in keyof R]: RpcPolicy };

export type RpcEvent =
  | { kind: "denied"; method: string; status: RpcStatus; reason: string; peer: string; remoteAddress: string }
  | { kind: "handler_error"; method: string; error: unknown };

export interface NodePortServerOptions {
  identity: TlsIdentity;
  /** The gateway CA (PEM), the trust anchor for client certificates. */
  caPem: string;
  authorizePeer: AuthorizePeer;
  /** Shared with the revocation path; a new one by default. */
  registry?: ConnectionRegistry;
  /** Largest message in either direction; default `limits.maxRpcMessageBytes`. */
  maxMessageBytes?: number;
  clock?: Clock;
  handshakeTimeoutMs?: number;
  onTlsEvent?: (event: TlsServerEvent) => void;
  onRpcEvent?: (event: RpcEvent) => void;
}

/** What the interceptor found out about a call, handed to the handler through the call's metadata object. */
interface CallInfo {
  peer: ConnectionPeer;
  method: string;
  deadline: number;
}

/** A request the deserializer could not accept: answered with its status instead of grpc-js's INTERNAL. */
class RejectedRequest {
  constructor(
    readonly status: RpcStatus,
    readonly details: string,
  ) {}
}

export class NodePortServer {
  readonly connections: ConnectionRegistry;
  readonly #grpc: Server;
  readonly #tls: NodePortTlsServer;
  readonly #authorizePeer: AuthorizePeer;
  readonly #maxMessageBytes: number;
  readonly #clock: Clock;
  readonly #onRpcEvent: (event: RpcEvent) => void;
  readonly #policies = new Map<string, RpcPolicy>();
  /** Keyed by the request Metadata object, which grpc-js passes unchanged from interceptor to handler. */
  readonly #callInfo = new WeakMap<Metadata, CallInfo>();
  readonly #services = new Set<string>();
  #injector: ConnectionInjector | undefined;
  #state: ServerState = "idle";
  #closed: Promise<void> | undefined;

  constructor(options: NodePortServerOptions) {
    this.connections = options.registry ?? new ConnectionRegistry();
    this.#authorizePeer = options.authorizePeer;
    this.#maxMessageBytes = options.maxMessageBytes ?? limits.maxRpcMessageBytes;
    this.#clock = options.clock ?? systemClock;
    this.#onRpcEvent = options.onRpcEvent ?? (() => {});
    this.#grpc = new Server({
      interceptors: [this.#policyInterceptor],
      // Checked on the 5-byte length prefix, before the body is buffered: RESOURCE_EXHAUSTED.
      "grpc.max_receive_message_length": this.#maxMessageBytes,
      "grpc.max_send_message_length": this.#maxMessageBytes,
    });
    this.#tls = new NodePortTlsServer({
      identity: options.identity,
      caPem: options.caPem,
      authorizePeer: options.authorizePeer,
      registry: this.connections,
      clock: this.#clock,
      ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
      ...(options.onTlsEvent ? { onEvent: options.onTlsEvent } : {}),
      onSecureConnection: (socket) => {
        if (this.#injector && this.#state === "listening") this.#injector.injectConnection(socket);
        else socket.destroy();
      },
    });
  }

  /** Registers a service with its handlers and a policy for each method. Only before `listen`. */
  addService<R extends GenServiceMethods>(
    service: GenService<R>,
    handlers: ServiceHandlers<R>,
    policy: ServicePolicy<R>,
  ): void {
    if (this.#state !== "idle")
      throw new TransportError("invalid_state", "services must be added before the server listens");
    const desc = service as unknown as DescService;
    if (this.#services.has(desc.typeName))
      throw new TransportError("invalid_config", `${desc.typeName} is already registered`);
    const definition = serviceDefinition(desc, { maxMessageBytes: this.#maxMessageBytes });
    const policies = policy as Record<string, RpcPolicy | undefined>;
    const implementations = handlers as unknown as Record<string, UnaryHandler<DescMessage, DescMessage>>;
    const served: Record<string, MethodDefinition<unknown, unknown>> = {};
    const implementation: UntypedServiceImplementation = {};
    const newPolicies = new Map<string, RpcPolicy>();
    for (const method of desc.methods) {
      const methodPolicy = policies[method.localName];
      if (methodPolicy !== "anonymous" && methodPolicy !== "device")
        throw new TransportError("invalid_config", `${desc.typeName}.${method.name} has no access policy`);
    }
    for (const method of desc.methods) {
      const methodPolicy = policies[method.localName] as RpcPolicy;
      const handler = implementations[method.localName];
      if (method.methodKind !== "unary") {
        if (handler !== undefined)
          throw new TransportError(
            "invalid_config",
            `${desc.typeName}.${method.name} is a ${method.methodKind} method; only unary methods are served yet`,
          );
        continue;
      }
      if (typeof handler !== "function")
        throw new TransportError("invalid_config", `${desc.typeName}.${method.name} has no handler`);
      const base = definition[method.localName] as MethodDefinition<unknown, unknown>;
      served[method.localName] = {
        ...base,
        requestDeserialize: tolerantDeserializer(base.requestDeserialize),
      };
      implementation[method.localName] = this.#unary(handler);
      newPolicies.set(base.path, methodPolicy);
    }
    this.#grpc.addService(served, implementation);
    for (const [path, p] of newPolicies) this.#policies.set(path, p);
    this.#services.add(desc.typeName);
  }

  state(): ServerState {
    return this.#state;
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    if (this.#state !== "idle")
      throw new TransportError("invalid_state", `cannot listen: the server is ${this.#state}`);
    this.#state = "listening";
    // TLS is done by our own server; grpc-js only sees decrypted sockets.
    this.#injector = this.#grpc.createConnectionInjector(ServerCredentials.createInsecure());
    try {
      return await this.#tls.listen(host, port);
    } catch (err) {
      this.#injector.destroy();
      this.#injector = undefined;
      this.#state = "idle";
      throw err;
    }
  }

  address(): AddressInfo | undefined {
    return this.#tls.address();
  }

  /** Hot-swaps the server certificate for new connections (no restart; live connections are kept). */
  updateIdentity(certChainPem: string, keyPem: string): void {
    this.#tls.updateIdentity(certChainPem, keyPem);
  }

  /** Follows the renewals of a certificate source (e.g. ServerCertificateManager). */
  follow(source: ServerIdentitySource, onError?: (err: unknown) => void): () => void {
    return this.#tls.follow(source, onError);
  }

  /** Ends a device's live calls and connections now (after revoking it in the registry). */
  closeDevice(deviceId: string, reason?: string): number {
    return this.connections.closeDevice(deviceId, reason);
  }

  /**
   * Stops accepting; asks every HTTP/2 session to finish (GOAWAY) and lets in-flight calls complete for
   * up to `graceMs`; then cancels what is left and destroys the sockets. Idempotent.
   */
  close(graceMs: number = limits.shutdownGraceMs): Promise<void> {
    if (this.#closed) return this.#closed;
    if (this.#state === "idle") {
      this.#state = "closed";
      this.#grpc.forceShutdown();
      this.#closed = Promise.resolve();
      return this.#closed;
    }
    this.#state = "closing";
    const injector = this.#injector;
    injector?.drain(graceMs);
    this.#closed = this.#tls.close(graceMs).then(() => {
      this.connections.closeAll();
      injector?.destroy();
      this.#grpc.forceShutdown();
      this.#state = "closed";
    });
    return this.#closed;
  }

  // --- policy ---

  readonly #policyInterceptor: ServerInterceptor = (methodDescriptor, call) =>
    new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            this.#admit(methodDescriptor.path, call).then(
              (info) => {
                this.#callInfo.set(metadata, info);
                nextMetadata(metadata);
              },
              (err: unknown) => {
                const rpc =
                  err instanceof RpcError
                    ? err
                    : new RpcError(RpcStatus.UNAVAILABLE, "the access check failed; try again", {
                        cause: err,
                      });
                const peer = this.connections.lookup(call.getConnectionInfo());
                this.#onRpcEvent({
                  kind: "denied",
                  method: methodDescriptor.path,
                  status: rpc.status,
                  reason: rpc.message,
                  peer: peer?.identity.kind === "device" ? `device:${peer.identity.deviceId}` : "anonymous",
                  remoteAddress: peer?.remoteAddress ?? "",
                });
                call.sendStatus({ code: rpc.status, details: rpc.message });
              },
            );
          },
        });
      },
    });

  async #admit(path: string, call: ServerInterceptingCallInterface): Promise<CallInfo> {
    const peer = this.connections.lookup(call.getConnectionInfo());
    if (!peer) throw new RpcError(RpcStatus.UNAVAILABLE, "the connection is closing");
    const policy = this.#policies.get(path);
    if (policy === undefined)
      throw new RpcError(RpcStatus.PERMISSION_DENIED, "this method has no access policy");
    const info: CallInfo = { peer, method: path, deadline: deadlineMs(call.getDeadline()) };
    if (policy === "anonymous") return info;
    const identity = peer.identity;
    if (identity.kind !== "device" || peer.leafDer === undefined)
      throw new RpcError(
        RpcStatus.UNAUTHENTICATED,
        "this method requires a paired device's client certificate",
      );
    // The certificate of the connection carrying this call, as TLS reports it, must be the one we
    // accepted the connection with (belt and braces for the endpoint lookup above).
    const raw = call.getAuthContext().sslPeerCertificate?.raw;
    if (!raw || !peer.leafDer.equals(raw))
      throw new RpcError(RpcStatus.PERMISSION_DENIED, "the connection's client certificate does not match");
    const decision = await this.#authorizePeer(peer.leafDer);
    if (!decision.ok || decision.device.deviceId !== identity.deviceId)
      throw new RpcError(
        RpcStatus.PERMISSION_DENIED,
        `the client certificate is no longer authorized (${decision.ok ? "device mismatch" : decision.reason})`,
      );
    return info;
  }

  // --- handlers ---

  #unary(
    handler: UnaryHandler<DescMessage, DescMessage>,
  ): (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void {
    return (call, callback) => {
      const info = this.#callInfo.get(call.metadata);
      this.#callInfo.delete(call.metadata);
      if (!info) {
        callback({ code: RpcStatus.INTERNAL, details: "the call was not admitted" });
        return;
      }
      const request = call.request;
      if (request instanceof RejectedRequest) {
        callback({ code: request.status, details: request.details });
        return;
      }
      const controller = new AbortController();
      let finished = false;
      let untrack: (() => void) | undefined;
      const finish = (error: { code: RpcStatus; details: string } | null, value?: unknown) => {
        if (finished) return;
        finished = true;
        untrack?.();
        if (error) {
          controller.abort(new RpcError(error.code, error.details));
          callback(error);
        } else callback(null, value);
      };
      call.once("cancelled", () => {
        if (finished) return;
        finished = true;
        untrack?.();
        controller.abort(new RpcError(RpcStatus.CANCELLED, "the call was cancelled"));
      });
      const identity = info.peer.identity;
      if (identity.kind === "device")
        untrack = this.connections.trackCall(identity.deviceId, (reason) =>
          finish({ code: RpcStatus.PERMISSION_DENIED, details: reason }),
        );
      const context = makeContext(info, call.metadata, controller.signal);
      Promise.resolve()
        .then(() => handler(request as MessageShape<DescMessage>, context))
        .then(
          (response) => finish(null, response),
          (err: unknown) => finish(this.#statusOf(info.method, err)),
        );
    };
  }

  #statusOf(method: string, err: unknown): { code: RpcStatus; details: string } {
    if (err instanceof RpcError) return { code: err.status, details: err.message };
    this.#onRpcEvent({ kind: "handler_error", method, error: err });
    return { code: RpcStatus.INTERNAL, details: "internal error" };
  }
}

function makeContext(info: CallInfo, metadata: Metadata, signal: AbortSignal): RpcContext {
  return {
    peer: info.peer.identity,
    remoteAddress: info.peer.remoteAddress,
    remotePort: info.peer.remotePort,
    method: info.method,
    deadline: info.deadline,
    signal,
    metadata(key: string): string | undefined {
      const value = metadata.get(key.toLowerCase())[0];
      return typeof value === "string" ? value : undefined;
    },
  };
}

function deadlineMs(deadline: Deadline): number {
  if (deadline instanceof Date) return deadline.getTime();
  return Number.isFinite(deadline) ? deadline : Number.POSITIVE_INFINITY;
}

/** Turns a decoding failure into a value the handler wrapper answers with the right status. */
function tolerantDeserializer(deserialize: (bytes: Buffer) => unknown): (bytes: Buffer) => unknown {
  return (bytes) => {
    try {
      return deserialize(bytes);
    } catch (err) {
      if (err instanceof RpcError) return new RejectedRequest(err.status, err.message);
      return new RejectedRequest(RpcStatus.INVALID_ARGUMENT, "malformed request");
    }
  };
}
