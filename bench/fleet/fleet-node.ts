import * as http2 from "node:http2";
import { performance } from "node:perf_hooks";
import * as tls from "node:tls";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { limits } from "../../src/common/limits.js";
import { reconnectDelayMs } from "../../src/common/reconnect-policy.js";
import {
  type GatewayMessage,
  GatewayMessageSchema,
  NodeMessageSchema,
  RegisterNodeRequestSchema,
} from "../../src/gen/palyra/v1/node_pb.js";
import { type BidiStream, bidi, unary } from "./grpc-h2.js";

/** A paired simulated node: its certificate and key (PEM) and where the gateway is. */
export interface FleetIdentity {
  deviceId: string;
  keyPem: string;
  certPem: string;
}

export interface FleetTarget {
  host: string;
  port: number;
  caPem: string;
}

export type FleetNodeState = "idle" | "connecting" | "online" | "backing_off" | "stopped";

export interface FleetNodeEvents {
  online(node: FleetNode): void;
  /** The session ended while the node was online; `at` is epoch ms (performance clock). */
  lost(node: FleetNode, at: number, reason: string): void;
}

/** TLS + RegisterNode + Config must finish within this, as a node host's call deadline would. */
const ATTEMPT_TIMEOUT_MS = 30_000;

export const now = () => performance.timeOrigin + performance.now();

const CAPABILITIES = [{ name: "echo", requiresMediation: false, description: "returns its input" }];

/**
 * One simulated node: a mutual-TLS HTTP/2 session, RegisterNode, then the Connect stream with Hello,
 * heartbeats at the gateway's interval, and echo answers to Dispatch; reconnects like a node host.
 * Explicit state machine: idle -> connecting -> online -> (backing_off -> connecting ...) -> stopped.
 */
export class FleetNode {
  #state: FleetNodeState = "idle";
  #session: http2.ClientHttp2Session | undefined;
  #stream: BidiStream | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #failures = 0;
  #goodbyeAt: number | undefined;
  #goodbyeSpreadMs = 0;
  #epoch = "";
  #lastSeq = 0n;
  /** Dispatches answered (echo). */
  answered = 0;

  constructor(
    readonly identity: FleetIdentity,
    readonly target: FleetTarget,
    readonly events: FleetNodeEvents,
  ) {}

  state(): FleetNodeState {
    return this.#state;
  }

  start(): void {
    if (this.#state === "idle" || this.#state === "backing_off") this.#connect();
  }

  stop(): void {
    this.#state = "stopped";
    clearTimeout(this.#retry);
    this.#teardown();
  }

  #connect(): void {
    this.#state = "connecting";
    const socket = tls.connect({
      host: this.target.host,
      port: this.target.port,
      ca: this.target.caPem,
      key: this.identity.keyPem,
      cert: this.identity.certPem,
      ALPNProtocols: ["h2"],
      minVersion: "TLSv1.3",
    });
    const session = http2.connect(`https://${this.target.host}:${this.target.port}`, {
      createConnection: () => socket,
    });
    this.#session = session;
    // Every callback of this attempt is ignored once a newer attempt (or a stop) replaced it.
    const ended = (reason: string) => {
      if (this.#session === session) this.#ended(reason);
    };
    this.#deadline = setTimeout(() => ended("attempt timed out"), ATTEMPT_TIMEOUT_MS);
    socket.on("error", (err) => ended(err.message));
    session.on("error", (err) => ended(err.message));
    session.on("close", () => ended("session closed"));
    session.on("goaway", () => {
      if (this.#session === session) this.#goodbyeAt = now();
    });
    const request = toBinary(
      RegisterNodeRequestSchema,
      create(RegisterNodeRequestSchema, {
        deviceId: this.identity.deviceId,
        platform: "linux",
        version: "fleet",
        capabilities: CAPABILITIES,
      }),
    );
    unary(session, "/palyra.v1.NodeService/RegisterNode", request).then(
      () => {
        if (this.#session !== session) return;
        this.#stream = bidi(
          session,
          "/palyra.v1.NodeService/Connect",
          (bytes) => {
            if (this.#session === session) this.#onMessage(fromBinary(GatewayMessageSchema, bytes));
          },
          (err) => ended(err ? err.message : "stream ended"),
        );
        this.#send({
          case: "hello",
          value: { deviceId: this.identity.deviceId, resumeFrom: this.#lastSeq, epoch: this.#epoch },
        });
      },
      (err: Error) => ended(err.message),
    );
  }

  #onMessage(message: GatewayMessage): void {
    if (message.seq > this.#lastSeq) this.#lastSeq = message.seq;
    const body = message.body;
    switch (body.case) {
      case "config": {
        clearTimeout(this.#deadline);
        if (body.value.epoch !== this.#epoch) this.#lastSeq = 0n;
        this.#epoch = body.value.epoch;
        this.#state = "online";
        this.#failures = 0;
        this.#goodbyeAt = undefined;
        const interval = body.value.heartbeatIntervalMs || limits.heartbeatIntervalMs;
        clearInterval(this.#heartbeat);
        // A random phase, as real nodes that connected at different moments would have.
        this.#heartbeat = setTimeout(() => {
          this.#beat();
          this.#heartbeat = setInterval(() => this.#beat(), interval);
        }, Math.random() * interval);
        this.events.online(this);
        break;
      }
      case "dispatch":
        this.answered++;
        this.#send({
          case: "capabilityResult",
          value: { requestId: body.value.requestId, success: true, outputJson: body.value.inputJson },
        });
        break;
      case "goAway":
        this.#goodbyeAt = now();
        this.#goodbyeSpreadMs = body.value.reconnectSpreadMs;
        break;
      default:
        break;
    }
  }

  #beat(): void {
    this.#send({ case: "heartbeat", value: { sentAtUnixMs: BigInt(Date.now()) } });
  }

  #send(body: MessageInitShape<typeof NodeMessageSchema>["body"]): void {
    this.#stream?.write(toBinary(NodeMessageSchema, create(NodeMessageSchema, { body })));
  }

  #ended(reason: string): void {
    if (this.#state === "stopped" || this.#state === "backing_off" || this.#state === "idle") return;
    const wasOnline = this.#state === "online";
    this.#teardown();
    if (wasOnline) this.events.lost(this, now(), reason);
    this.#failures++;
    // The real node host's policy (common/reconnect-policy.ts).
    const delay = reconnectDelayMs(
      { failures: this.#failures, goodbyeAt: this.#goodbyeAt, spreadMs: this.#goodbyeSpreadMs },
      now(),
      Math.random(),
    );
    this.#state = "backing_off";
    this.#retry = setTimeout(() => this.start(), delay);
  }

  #teardown(): void {
    clearTimeout(this.#deadline);
    clearInterval(this.#heartbeat);
    clearTimeout(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#stream = undefined;
    const session = this.#session;
    this.#session = undefined;
    if (session && !session.destroyed) session.destroy();
  }
}
