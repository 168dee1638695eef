import type { AddressInfo } from "node:net";
import type { DescMessage, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  type ConnectionInjector,
  type Metadata,
  type MethodDefinition,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { type Clock, systemClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { type Scheduler, systemScheduler } from "../../common/scheduler.js";
import { ACCESS_POLICIES, type AccessPolicy, deviceRefusal } from "../access-policy.js";
import { TransportError } from "../errors.js";
import { ConnectionRegistry } from "../tls/connection-registry.js";
import { type ConnectionPeer, connectionPeerOf } from "../tls/peer-identity.js";
import {
  type AuthorizePeer,
  NodePortTlsServer,
  type ServerIdentitySource,
  type TlsIdentity,
  type TlsServerEvent,
} from "../tls/tls-server.js";
import {
  type AnonymousSessionLimits,
  type GuardEnd,
  guardAnonymousSession,
  injectorHttp2Server,
} from "./anonymous-session-guard.js";
import {
  CallContext,
  type CallInfo,
  deadlineMs,
  RejectedRequest,
  type RpcContext,
  type Status,
  tolerantDeserializer,
} from "./call-context.js";
import { RpcError, RpcStatus } from "./rpc-error.js";
import { messageEncoder, type ServedMethodNames, serviceDefinition } from "./service-definition.js";
import { type AnyUnaryHandler, serveUnary } from "./unary-call.js";

/**
 * The gateway's node port: a grpc-js server fed by our own TLS server through a connection injector
 * (DESIGN sections 2 and 6). Every method has an access policy, checked by one interceptor before the
 * request is read:
 * - `anonymous`: any accepted connection (pairing);
 * - `device`: a device certificate is required (UNAUTHENTICATED without one), and the allowlist is
 *   checked again on every call (PERMISSION_DENIED once the device or certificate is no longer trusted);
 * - `node`: as `device`, and the device must have been paired as a node (PERMISSION_DENIED otherwise).
 * Unary handlers are plain async functions of (request, context); bidi-streaming handlers get a
 * BidiStream and the context. The context carries the peer identity and the remote address. Throw
 * RpcError to answer with a status; anything else becomes INTERNAL. Server- and client-streaming
 * methods are not served (registering a handler for one is refused).
 */

export type RpcPolicy = AccessPolicy;
export type ServerState = "idle" | "listening" | "closing" | "closed";

export type { RpcContext } from "./call-context.js";

export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: RpcContext,
) => Promise<MessageInitShape<O>> | MessageInitShape<O>;

/**
 * The server side of a bidi-streaming call. Iterate it for the client's messages (the iteration ends
 * when the client half-closes; it throws RpcError when the call ends otherwise: CANCELLED, revocation,
 * a malformed message). `send` resolves once the message is handed to the connection, so awaiting it
 * applies backpressure; it rejects with RpcError when the message is over the size limit or the call
 * has ended. `end` finishes the call with OK after the messages already sent (as returning does).
 */
export interface BidiStream<I extends DescMessage, O extends DescMessage>
  extends AsyncIterable<MessageShape<I>> {
  send(message: MessageInitShape<O>): Promise<void>;
  end(): void;
}

/** Runs for the whole call; resolving ends it with OK, throwing RpcError ends it with that status. */
export type BidiHandler<I extends DescMessage, O extends DescMessage> = (
  stream: BidiStream<I, O>,
  context: RpcContext,
) => Promise<void>;

/** One handler per unary or bidi-streaming method of the service. */
export type ServiceHandlers<R extends GenServiceMethods> = {
  [K in ServedMethodNames<R>]: R[K]["methodKind"] extends "bidi_streaming"
    ? BidiHandler<R[K]["input"], R[K]["output"]>
    : UnaryHandler<R[K]["input"], R[K]["output"]>;
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
  /** How anonymous connections are limited (defaults from limits.ts). */
  anonymous?: Partial<AnonymousSessionLimits> & { perAddress?: number; total?: number };
  scheduler?: Scheduler;
  onTlsEvent?: (event: TlsServerEvent) => void;
  onRpcEvent?: (event: RpcEvent) => void;
  /** An anonymous connection cut for idleness, age or a dead HTTP/2 session. */
  onAnonymousEnd?: (why: GuardEnd, peer: ConnectionPeer | undefined) => void;
}

export class NodePortServer {
  readonly connections: ConnectionRegistry;
  /**
   * Two grpc-js servers with the same services and policy, differing only in HTTP/2 settings: an
   * anonymous connection is told MAX_CONCURRENT_STREAMS 8 in its very first SETTINGS frame, a device
   * 100 (with keepalive). A connection goes to one or the other when its handshake is done.
   */
  readonly #grpc: { anonymous: Server; device: Server };
  readonly #anonymousLimits: AnonymousSessionLimits;
  readonly #scheduler: Scheduler;
  readonly #onAnonymousEnd: NonNullable<NodePortServerOptions["onAnonymousEnd"]>;
  readonly #tls: NodePortTlsServer;
  readonly #authorizePeer: AuthorizePeer;
  readonly #maxMessageBytes: number;
  readonly #clock: Clock;
  readonly #onRpcEvent: (event: RpcEvent) => void;
  readonly #policies = new Map<string, RpcPolicy>();
  /** Keyed by the request Metadata object, which grpc-js passes unchanged from interceptor to handler. */
  readonly #callInfo = new WeakMap<Metadata, CallInfo>();
  /** Device connections whose TLS certificate was compared with the one recorded at the handshake. */
  readonly #certificateMatched = new WeakSet<ConnectionPeer>();
  readonly #services = new Set<string>();
  /** Live bidi streams per device: ends one with PERMISSION_DENIED, resolving once its status is out. */
  readonly #streams = new Map<string, Set<(reason: string) => Promise<void>>>();
  /** Devices whose streams are being ended by closeDevice; their connections close after the flush. */
  readonly #closingDevices = new Set<string>();
  #injectors: { anonymous: ConnectionInjector; device: ConnectionInjector } | undefined;
  #state: ServerState = "idle";
  #closed: Promise<void> | undefined;

  constructor(options: NodePortServerOptions) {
    this.connections = options.registry ?? new ConnectionRegistry();
    this.#authorizePeer = options.authorizePeer;
    this.#maxMessageBytes = options.maxMessageBytes ?? limits.maxRpcMessageBytes;
    this.#clock = options.clock ?? systemClock;
    this.#onRpcEvent = options.onRpcEvent ?? (() => {});
    this.#onAnonymousEnd = options.onAnonymousEnd ?? (() => {});
    this.#scheduler = options.scheduler ?? systemScheduler;
    this.#anonymousLimits = {
      idleMs: options.anonymous?.idleMs ?? limits.anonymousIdleMs,
      maxAgeMs: options.anonymous?.maxAgeMs ?? limits.anonymousMaxAgeMs,
      goawayGraceMs: options.anonymous?.goawayGraceMs ?? limits.anonymousGoawayGraceMs,
      deadSessionCheckMs: options.anonymous?.deadSessionCheckMs ?? limits.anonymousDeadSessionCheckMs,
    };
    const common = {
      interceptors: [this.#policyInterceptor],
      // Checked on the 5-byte length prefix, before the body is buffered: RESOURCE_EXHAUSTED.
      "grpc.max_receive_message_length": this.#maxMessageBytes,
      "grpc.max_send_message_length": this.#maxMessageBytes,
    };
    this.#grpc = {
      anonymous: new Server({ ...common, "grpc.max_concurrent_streams": limits.anonymousMaxStreams }),
      device: new Server({
        ...common,
        "grpc.max_concurrent_streams": limits.deviceMaxStreams,
        "grpc.keepalive_time_ms": limits.deviceKeepaliveMs,
        "grpc.keepalive_timeout_ms": limits.deviceKeepaliveTimeoutMs,
      }),
    };
    this.#tls = new NodePortTlsServer({
      identity: options.identity,
      caPem: options.caPem,
      authorizePeer: options.authorizePeer,
      registry: this.connections,
      clock: this.#clock,
      ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
      ...(options.anonymous?.perAddress === undefined
        ? {}
        : { anonymousPerAddress: options.anonymous.perAddress }),
      ...(options.anonymous?.total === undefined ? {} : { anonymousTotal: options.anonymous.total }),
      ...(options.onTlsEvent ? { onEvent: options.onTlsEvent } : {}),
      onSecureConnection: (socket, peer) => {
        if (this.#injectors && this.#state === "listening")
          this.#injectors[peer.identity.kind === "device" ? "device" : "anonymous"].injectConnection(socket);
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
    const implementations = handlers as unknown as Record<string, unknown>;
    const served: Record<string, MethodDefinition<unknown, unknown>> = {};
    const implementation: UntypedServiceImplementation = {};
    const newPolicies = new Map<string, RpcPolicy>();
    for (const method of desc.methods) {
      const methodPolicy = policies[method.localName];
      if (methodPolicy === undefined || !ACCESS_POLICIES.includes(methodPolicy))
        throw new TransportError("invalid_config", `${desc.typeName}.${method.name} has no access policy`);
    }
    for (const method of desc.methods) {
      const methodPolicy = policies[method.localName] as RpcPolicy;
      const handler = implementations[method.localName];
      if (method.methodKind !== "unary" && method.methodKind !== "bidi_streaming") {
        if (handler !== undefined)
          throw new TransportError(
            "invalid_config",
            `${desc.typeName}.${method.name} is a ${method.methodKind} method; only unary and bidi-streaming methods are served`,
          );
        continue;
      }
      if (typeof handler !== "function")
        throw new TransportError("invalid_config", `${desc.typeName}.${method.name} has no handler`);
      const base = definition[method.localName] as MethodDefinition<unknown, unknown>;
      if (method.methodKind === "unary") {
        served[method.localName] = {
          ...base,
          requestDeserialize: tolerantDeserializer(base.requestDeserialize),
        };
        implementation[method.localName] = this.#unary(handler as UnaryHandler<DescMessage, DescMessage>);
      } else {
        served[method.localName] = {
          ...base,
          requestDeserialize: tolerantDeserializer(base.requestDeserialize),
          // `send` encodes (and checks the size) itself, so that an oversize message rejects `send`.
          responseSerialize: (bytes: unknown) => bytes as Buffer,
        };
        implementation[method.localName] = this.#bidi(
          handler as BidiHandler<DescMessage, DescMessage>,
          messageEncoder(method.output, this.#maxMessageBytes) as (value: unknown) => Buffer,
        );
      }
      newPolicies.set(base.path, methodPolicy);
    }
    this.#grpc.anonymous.addService(served, implementation);
    this.#grpc.device.addService(served, implementation);
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
    let anonymous: ConnectionInjector | undefined;
    const anonymousHttp2 = injectorHttp2Server(this.#grpc.anonymous, () => {
      anonymous = this.#grpc.anonymous.createConnectionInjector(ServerCredentials.createInsecure());
    });
    if (!anonymousHttp2)
      throw new TransportError("invalid_state", "cannot watch anonymous HTTP/2 sessions (grpc-js changed?)");
    anonymousHttp2.on("session", (session) =>
      guardAnonymousSession(
        session,
        this.#anonymousLimits,
        (why) => this.#onAnonymousEnd(why, connectionPeerOf(session.socket)),
        this.#scheduler,
      ),
    );
    this.#injectors = {
      anonymous: anonymous!,
      device: this.#grpc.device.createConnectionInjector(ServerCredentials.createInsecure()),
    };
    try {
      return await this.#tls.listen(host, port);
    } catch (err) {
      this.#injectors.anonymous.destroy();
      this.#injectors.device.destroy();
      this.#injectors = undefined;
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

  /**
   * Ends a device's live calls and connections (after revoking it in the registry); returns how many
   * connections. Without open streams this happens now. A stream that has sent messages ends with
   * HTTP/2 trailers, which take a few turns of the event loop to reach the socket: its status is sent
   * first and the connections are destroyed once it is out (at most `STREAM_FLUSH_MS` later), so the
   * node sees PERMISSION_DENIED rather than a dropped connection.
   */
  closeDevice(deviceId: string, reason?: string): number {
    // Already being closed (its streams' statuses are going out): a second close, such as the cluster's
    // revocation signal for a revocation made here, must not cut the connections before they are sent.
    if (this.#closingDevices.has(deviceId)) return 0;
    const streams = [...(this.#streams.get(deviceId) ?? [])];
    if (streams.length === 0) return this.connections.closeDevice(deviceId, reason);
    this.#streams.delete(deviceId);
    this.#closingDevices.add(deviceId);
    const count = this.connections.connectionCount(deviceId);
    const message = reason ?? "the device's access was revoked";
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, STREAM_FLUSH_MS);
    });
    // grpc-js reports a status out when it hands the trailers to HTTP/2; the socket write follows a
    // few turns later, so the connections get a short grace period after that.
    const flushed = Promise.all(streams.map((end) => end(message))).then(
      () => new Promise<void>((resolve) => setTimeout(resolve, TRAILER_GRACE_MS)),
    );
    void Promise.race([flushed, bound]).then(() => {
      clearTimeout(timer);
      this.#closingDevices.delete(deviceId);
      this.connections.closeDevice(deviceId, reason);
    });
    return count;
  }

  /**
   * Re-checks every live device connection against the allowlist and destroys those whose certificate
   * left it since the handshake (rotation overlap over, expired); new calls are refused anyway, this
   * also ends streams that make none. Returns the peers it cut.
   */
  async sweep(): Promise<ConnectionPeer[]> {
    const cut: ConnectionPeer[] = [];
    for (const peer of this.connections.devicePeers()) {
      if (peer.identity.kind !== "device" || peer.leafDer === undefined) continue;
      const decision = await this.#authorizePeer(peer.leafDer);
      if (decision.ok && decision.device.deviceId === peer.identity.deviceId) continue;
      if (this.connections.closeConnection(peer)) cut.push(peer);
    }
    return cut;
  }

  /**
   * Stops accepting; asks every HTTP/2 session to finish (GOAWAY) and lets in-flight calls complete for
   * up to `graceMs`; then cancels what is left and destroys the sockets. Idempotent.
   */
  close(graceMs: number = limits.shutdownGraceMs): Promise<void> {
    if (this.#closed) return this.#closed;
    const grpcServers = [this.#grpc.anonymous, this.#grpc.device];
    if (this.#state === "idle") {
      this.#state = "closed";
      for (const grpc of grpcServers) grpc.forceShutdown();
      this.#closed = Promise.resolve();
      return this.#closed;
    }
    this.#state = "closing";
    const injectors = this.#injectors ? [this.#injectors.anonymous, this.#injectors.device] : [];
    for (const injector of injectors) injector.drain(graceMs);
    this.#closed = this.#tls.close(graceMs).then(() => {
      this.connections.closeAll();
      for (const injector of injectors) injector.destroy();
      for (const grpc of grpcServers) grpc.forceShutdown();
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
    const info: CallInfo = { peer, method: path, deadline: deadlineMs(call.getDeadline()), call };
    if (policy === "anonymous") return info;
    const identity = peer.identity;
    if (identity.kind !== "device" || peer.leafDer === undefined)
      throw new RpcError(
        RpcStatus.UNAUTHENTICATED,
        "this method requires a paired device's client certificate",
      );
    // The certificate of the connection carrying this call, as TLS reports it, must be the one we
    // accepted the connection with (belt and braces for the endpoint lookup above). Checked on the first
    // call of each connection: a connection's certificate cannot change (TLS 1.3, no renegotiation), and
    // `peer` is that one connection's record (a new connection on the same addresses gets a new one).
    // getAuthContext converts the whole certificate to an object each time, dearer than the call itself.
    if (!this.#certificateMatched.has(peer)) {
      const raw = call.getAuthContext().sslPeerCertificate?.raw;
      if (!raw || !peer.leafDer.equals(raw))
        throw new RpcError(RpcStatus.PERMISSION_DENIED, "the connection's client certificate does not match");
      this.#certificateMatched.add(peer);
    }
    const decision = await this.#authorizePeer(peer.leafDer);
    if (!decision.ok || decision.device.deviceId !== identity.deviceId)
      throw new RpcError(
        RpcStatus.PERMISSION_DENIED,
        `the client certificate is no longer authorized (${decision.ok ? "device mismatch" : decision.reason})`,
      );
    const refusal = deviceRefusal(policy, decision.device);
    if (refusal !== undefined) throw new RpcError(RpcStatus.PERMISSION_DENIED, refusal);
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
      serveUnary(handler as AnyUnaryHandler, info, call, callback, this.connections, (err) =>
        this.#statusOf(info.method, err),
      );
    };
  }

  #bidi(
    handler: BidiHandler<DescMessage, DescMessage>,
    encode: (value: unknown) => Buffer,
  ): (call: ServerDuplexStream<unknown, unknown>) => void {
    return (call) => {
      const info = this.#callInfo.get(call.metadata);
      this.#callInfo.delete(call.metadata);
      // Without an 'error' listener a failed write would throw; statuses are sent explicitly below.
      call.on("error", () => {});
      if (!info) {
        call.emit("error", { code: RpcStatus.INTERNAL, details: "the call was not admitted" });
        return;
      }
      const controller = new AbortController();
      let finished = false;
      let untrack: (() => void) | undefined;
      /** Ends the call: OK after the queued messages, an error status at once. */
      const finish = (status: Status | null) => {
        if (finished) return;
        finished = true;
        untrack?.();
        if (status) {
          controller.abort(new RpcError(status.code, status.details));
          info.call.sendStatus({ code: status.code, details: status.details });
          // Ends the handler's iteration; the status above is already on its way.
          call.destroy();
        } else {
          controller.abort(new RpcError(RpcStatus.CANCELLED, "the call has ended"));
          call.end();
        }
      };
      // grpc-js reports 'cancelled' for every call end once its status is out (or the client left).
      const statusOut = new Promise<void>((resolve) => call.once("cancelled", () => resolve()));
      call.once("cancelled", () => {
        if (finished) return;
        finished = true;
        untrack?.();
        controller.abort(new RpcError(RpcStatus.CANCELLED, "the call was cancelled"));
      });
      const identity = info.peer.identity;
      if (identity.kind === "device") {
        const deviceId = identity.deviceId;
        const revoke = (reason: string): Promise<void> => {
          finish({ code: RpcStatus.PERMISSION_DENIED, details: reason });
          return statusOut;
        };
        let streams = this.#streams.get(deviceId);
        if (!streams) {
          streams = new Set();
          this.#streams.set(deviceId, streams);
        }
        streams.add(revoke);
        const untrackCall = this.connections.trackCall(deviceId, revoke);
        untrack = () => {
          untrackCall();
          const current = this.#streams.get(deviceId);
          current?.delete(revoke);
          if (current?.size === 0) this.#streams.delete(deviceId);
        };
      }
      const ended = (): RpcError =>
        controller.signal.aborted
          ? (controller.signal.reason as RpcError)
          : new RpcError(RpcStatus.CANCELLED, "the call has ended");
      const stream: BidiStream<DescMessage, DescMessage> = {
        [Symbol.asyncIterator]: async function* () {
          if (finished) throw ended();
          try {
            for await (const item of call.iterator({ destroyOnReturn: false })) {
              if (item instanceof RejectedRequest) {
                const error = new RpcError(item.status, item.details);
                finish({ code: item.status, details: item.details });
                throw error;
              }
              yield item as MessageShape<DescMessage>;
            }
          } catch (err) {
            if (err instanceof RpcError) throw err;
            throw controller.signal.aborted ? ended() : err;
          }
          if (
            controller.signal.aborted &&
            (controller.signal.reason as RpcError).status !== RpcStatus.CANCELLED
          )
            throw ended();
        },
        send: (message) => {
          if (finished) return Promise.reject(ended());
          let bytes: Buffer;
          try {
            bytes = encode(message);
          } catch (err) {
            return Promise.reject(err);
          }
          return new Promise<void>((resolve, reject) => {
            const onAbort = () => reject(ended());
            controller.signal.addEventListener("abort", onAbort, { once: true });
            call.write(bytes, (err: Error | null | undefined) => {
              controller.signal.removeEventListener("abort", onAbort);
              if (err)
                reject(finished ? ended() : new RpcError(RpcStatus.UNAVAILABLE, "the message was not sent"));
              else resolve();
            });
          });
        },
        end: () => finish(null),
      };
      const context = new CallContext(info, call.metadata, controller);
      Promise.resolve()
        .then(() => handler(stream, context))
        .then(
          () => finish(null),
          (err: unknown) => {
            if (finished) return;
            finish(this.#statusOf(info.method, err));
          },
        );
    };
  }

  #statusOf(method: string, err: unknown): Status {
    if (err instanceof RpcError) return { code: err.status, details: err.message };
    this.#onRpcEvent({ kind: "handler_error", method, error: err });
    return { code: RpcStatus.INTERNAL, details: "internal error" };
  }
}

/** The longest closeDevice waits for a stream's status to go out before destroying its connections. */
const STREAM_FLUSH_MS = 250;
/** How long after a stream's status is handed to HTTP/2 its connection is kept for the bytes to leave. */
const TRAILER_GRACE_MS = 20;
