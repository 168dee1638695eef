import { X509Certificate } from "node:crypto";
import { platform } from "node:os";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Clock, systemClock } from "../common/clock.js";
import { gatewayAddresses, splitHostPort } from "../common/host-port.js";
import { limits } from "../common/limits.js";
import { type Random, systemRandom } from "../common/random.js";
import { reconnectDelayMs } from "../common/reconnect-policy.js";
import { type Scheduler, systemScheduler } from "../common/scheduler.js";
import { withTimeout } from "../common/timeout.js";
import { VERSION } from "../common/version.js";
import { type GatewayMessage, type NodeMessageSchema, NodeService } from "../gen/palyra/v1/node_pb.js";
import { renewalDelayMs } from "../identity/rotation.js";
import type { DeviceCredentials } from "../pairing/device-store.js";
import { NodePortClient } from "../transport/grpc/client.js";
import type { BidiCall, ServiceClient } from "../transport/grpc/service-definition.js";
import { QuicNodeClient } from "../transport/quic/client.js";
import type { Capability } from "./capabilities.js";
import { CapabilityRunner, type DispatchInput } from "./capability-runner.js";
import type { RecoveryOutcome } from "./recovery.js";
import { renewCredentials } from "./renewal.js";

export type NodeSessionState = "connecting" | "connected" | "backing_off" | "stopping" | "stopped";

export interface NodeSessionOptions {
  deviceId: string;
  credentials: DeviceCredentials;
  /** Signs with the device's Ed25519 identity key (renewals). */
  sign: (message: Uint8Array) => Uint8Array;
  /** Stores renewed credentials; the new certificate is used only once this resolves. */
  saveCredentials?: (credentials: DeviceCredentials) => Promise<void>;
  capabilities: readonly Capability[];
  consent: (question: string) => Promise<boolean>;
  concurrency?: number;
  /** What carries the control session; registration and renewal always use gRPC. Default grpc. */
  transport?: "grpc" | "quic";
  /** The gateway's QUIC port when it is not the node port's number. */
  quicPort?: number;
  onEvent?: (event: { kind: string; detail?: string }) => void;
  /**
   * Certificate recovery (recoverCredentials): asked when a session failed in a way that may mean the
   * gateway no longer takes this certificate. It throws when the device may not come back (revoked,
   * removed, past the recovery window): the session then ends for good (`fatal()`).
   */
  recover?: (credentials: DeviceCredentials) => Promise<RecoveryOutcome>;
  clock?: Clock;
  scheduler?: Scheduler;
  random?: Random;
}

export interface NodeSessionInfo {
  state: NodeSessionState;
  certificateExpiresAt: number;
  nextRenewalAt: number | undefined;
  lastError: string | undefined;
}

type NodeMessage = MessageInitShape<typeof NodeMessageSchema>;

/** The control session, over gRPC's Connect call or a QUIC stream: the same messages either way. */
type ControlStream = Pick<
  BidiCall<typeof NodeService.method.connect.input, typeof NodeService.method.connect.output>,
  "send" | "end" | "cancel" | "done"
> &
  AsyncIterable<GatewayMessage>;

/** One mutual-TLS connection: registered, with its control stream open and heartbeats going. */
interface Connection {
  client: NodePortClient;
  quic: QuicNodeClient | undefined;
  rpc: ServiceClient<typeof NodeService.method>;
  stream: ControlStream;
  /** The stream's messages, read once: the first (Config) by #open, the rest by #pump. */
  messages: AsyncIterator<GatewayMessage>;
  heartbeat: NodeJS.Timeout;
  renewHintMs: number;
}

const RENEW_RETRY_MIN_MS = 5_000;

/**
 * One node host's session with its gateway: register, keep the Connect stream open with heartbeats, run
 * dispatched capabilities (CapabilityRunner), renew the certificate at 2/3 of its life, and reconnect
 * with jittered exponential backoff (1 s to 30 s) until stopped. A renewal is make-before-break: the
 * new certificate's connection is open and registered before the old stream is closed, so the session
 * is never down.
 */
export class NodeSession {
  readonly #options: NodeSessionOptions;
  readonly #clock: Clock;
  readonly #scheduler: Scheduler;
  readonly #random: Random;
  readonly #runner: CapabilityRunner;
  #credentials: DeviceCredentials;
  /** Which of the gateways (`credentials.gateway`, comma-separated) is tried next. */
  #addressIndex = 0;
  #state: NodeSessionState = "connecting";
  #stop = new AbortController();
  #done: Promise<void> | undefined;
  #current: Connection | undefined;
  #handover: Connection | undefined;
  #renewTimer: unknown;
  #nextRenewalAt: number | undefined;
  #renewing: Promise<void> | undefined;
  #lastError: string | undefined;
  /** Where this node is in the gateway's event sequence, for resuming after a reconnect. */
  #epoch = "";
  #lastSeq = 0;
  /** When the gateway last said goodbye: for a while after, reconnects are tried at once. */
  #goodbyeAt: number | undefined;
  /** The reconnect spread that goodbye announced (0: none). */
  #goodbyeSpreadMs = 0;
  /** Why the session ended for good (the gateway refuses this device), if it did. */
  #fatal: Error | undefined;

  constructor(options: NodeSessionOptions) {
    this.#options = options;
    this.#credentials = options.credentials;
    this.#clock = options.clock ?? systemClock;
    this.#scheduler = options.scheduler ?? systemScheduler;
    this.#random = options.random ?? systemRandom;
    this.#runner = new CapabilityRunner({
      deviceId: options.deviceId,
      capabilities: options.capabilities,
      consent: options.consent,
      concurrency: options.concurrency ?? 4,
      clock: this.#clock,
      // Results go to whichever connection is current (after a renewal, the new one).
      send: (message) => this.#send(message),
      onEvent: (kind, detail) => this.#emit(kind, detail),
    });
  }

  state(): NodeSessionState {
    return this.#state;
  }

  info(): NodeSessionInfo {
    return {
      state: this.#state,
      certificateExpiresAt: certificateExpiry(this.#credentials.clientCertPem),
      nextRenewalAt: this.#nextRenewalAt,
      lastError: this.#lastError,
    };
  }

  /** Set when the loop ended because the gateway refuses this device (revoked, removed, too late). */
  fatal(): Error | undefined {
    return this.#fatal;
  }

  /** The credentials in use (renewed ones once stored). */
  credentials(): DeviceCredentials {
    return this.#credentials;
  }

  start(): Promise<void> {
    this.#done ??= this.#loop();
    return this.#done;
  }

  /** Half-closes the stream (the goodbye), cancels running calls, and resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#state = "stopping";
    this.#stop.abort();
    this.#runner.cancelAll();
    await this.#done;
  }

  /** Renews the client certificate now (also what the gateway's Renew asks for). */
  renewNow(reason = "requested"): Promise<void> {
    this.#renewing ??= this.#renew(reason).finally(() => {
      this.#renewing = undefined;
    });
    return this.#renewing;
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      this.#state = "connecting";
      try {
        await this.#session(() => {
          failures = 0;
        });
      } catch (err) {
        this.#lastError = (err as Error).message;
        this.#emit("disconnected", this.#lastError);
        if (!this.#stop.signal.aborted && this.#options.recover && this.#mayNeedRecovery(err)) {
          try {
            if (await this.#recover()) {
              failures = 0;
              continue;
            }
          } catch (fatal) {
            this.#fatal = fatal as Error;
            this.#lastError = this.#fatal.message;
            this.#emit("refused", this.#fatal.message);
            break;
          }
        }
      }
      if (this.#stop.signal.aborted) break;
      failures++;
      this.#addressIndex++;
      // After a goodbye the gateway is restarting: retry soon, spread as the gateway asked (see
      // reconnect-policy.ts), so a lone node is back within moments and a fleet does not stampede.
      const delay = reconnectDelayMs(
        { failures, goodbyeAt: this.#goodbyeAt, spreadMs: this.#goodbyeSpreadMs },
        this.#clock.now(),
        this.#random.bytes(4).readUInt32BE() / 2 ** 32,
      );
      this.#state = "backing_off";
      this.#emit("backoff", `${Math.round(delay)} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#stop.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.#state = "stopped";
  }

  /**
   * Whether a failure may mean the gateway no longer takes our certificate: it expired, the gateway
   * said no, or it dropped the connection after the handshake. Not when the gateway is simply not
   * there (refused, unreachable), which is every failure while it restarts.
   */
  #mayNeedRecovery(err: unknown): boolean {
    if (certificateExpiry(this.#credentials.clientCertPem) <= this.#clock.now()) return true;
    const message = err instanceof Error ? err.message : String(err);
    return !/cannot reach the gateway|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ETIMEDOUT|timed out|did not accept/.test(
      message,
    );
  }

  /** True when a new certificate is in use; throws when the gateway refuses this device for good. */
  async #recover(): Promise<boolean> {
    // Asked of the gateway this session is trying now; the whole list of gateways is kept.
    const outcome = await this.#options.recover!({ ...this.#credentials, gateway: this.#address() });
    if (outcome.kind === "recovered") outcome.credentials.gateway = this.#credentials.gateway;
    if (outcome.kind !== "recovered") {
      this.#emit("recovery_skipped", outcome.detail);
      return false;
    }
    await this.#options.saveCredentials?.(outcome.credentials);
    this.#credentials = outcome.credentials;
    this.#emit("recovered", new Date(certificateExpiry(outcome.credentials.clientCertPem)).toISOString());
    return true;
  }

  async #session(onConnected: () => void): Promise<void> {
    let conn = await this.#open(this.#credentials);
    this.#current = conn;
    const goodbye = () => this.#current?.stream.end();
    this.#stop.signal.addEventListener("abort", goodbye, { once: true });
    this.#state = "connected";
    onConnected();
    this.#emit("connected", `${this.#address()} over ${this.#options.transport ?? "grpc"}`);
    this.#scheduleRenewal(conn.renewHintMs);
    try {
      for (;;) {
        try {
          await this.#pump(conn);
        } catch (err) {
          if (!this.#handover) throw err;
        }
        const next = this.#handover;
        if (!next) return;
        // The old stream is over; carry on with the renewed certificate's connection.
        this.#handover = undefined;
        this.#close(conn);
        conn = next;
      }
    } finally {
      this.#stop.signal.removeEventListener("abort", goodbye);
      this.#scheduler.clearTimeout(this.#renewTimer);
      this.#nextRenewalAt = undefined;
      this.#close(conn);
      if (this.#handover) this.#close(this.#handover);
      this.#handover = undefined;
      this.#current = undefined;
    }
  }

  /** The gateway tried now: with several (a cluster), each failure moves to the next one. */
  #address(): string {
    const addresses = gatewayAddresses(this.#credentials.gateway);
    return addresses[this.#addressIndex % addresses.length]!;
  }

  async #open(credentials: DeviceCredentials): Promise<Connection> {
    const { host, port } = splitHostPort(this.#address());
    const client = new NodePortClient({
      host,
      port,
      pinnedCa: credentials.caCertPem,
      clientIdentity: { certChainPem: credentials.clientCertPem, keyPem: credentials.clientKeyPem },
    });
    let quic: QuicNodeClient | undefined;
    let abandoned = false;
    const establish = async (): Promise<Connection> => {
      const rpc = client.service(NodeService);
      const registered = await rpc.registerNode({
        deviceId: this.#options.deviceId,
        platform: platform(),
        version: VERSION,
        capabilities: this.#options.capabilities.map((c) => ({
          name: c.name,
          requiresMediation: c.requiresMediation,
          description: c.description,
        })),
      });
      let stream: ControlStream;
      if (this.#options.transport === "quic") {
        quic = await QuicNodeClient.connect({
          host,
          port: this.#options.quicPort ?? port,
          pinnedCa: credentials.caCertPem,
          clientIdentity: { certChainPem: credentials.clientCertPem, keyPem: credentials.clientKeyPem },
        });
        stream = await quic.openSession();
      } else stream = rpc.connect();
      await stream.send({
        body: {
          case: "hello",
          value: { deviceId: this.#options.deviceId, epoch: this.#epoch, resumeFrom: BigInt(this.#lastSeq) },
        },
      });
      // Connected means the gateway has attached the session (its Config came back), not merely that
      // Hello was written: a call pushed before that would find the node offline.
      const messages = stream[Symbol.asyncIterator]();
      const first = await withTimeout(
        messages.next(),
        limits.sessionAcceptTimeoutMs,
        () => new Error(`the gateway did not accept the session in ${limits.sessionAcceptTimeoutMs} ms`),
      );
      if (first.done || first.value.body.case !== "config")
        throw new Error("the gateway did not accept the session (no Config after Hello)");
      // Given up on (the opening timed out): the caller has closed the client already.
      if (abandoned) {
        quic?.close();
        throw new Error("the session opened too late");
      }
      this.#onConfig(first.value.body.value);
      const heartbeat = setInterval(() => {
        stream
          .send({ body: { case: "heartbeat", value: { sentAtUnixMs: BigInt(this.#clock.now()) } } })
          .catch(() => undefined);
      }, registered.heartbeatIntervalMs || limits.heartbeatIntervalMs);
      return { client, quic, rpc, stream, messages, heartbeat, renewHintMs: Number(registered.renewAfterMs) };
    };
    try {
      return await withTimeout(establish(), limits.sessionOpenTimeoutMs, () => {
        abandoned = true;
        return new Error(`the session did not open in ${limits.sessionOpenTimeoutMs} ms (timed out)`);
      });
    } catch (err) {
      quic?.close();
      client.close();
      throw err;
    }
  }

  #close(conn: Connection): void {
    clearInterval(conn.heartbeat);
    conn.stream.end();
    conn.client.close();
    // After the goodbye has had its turn to go out (QUIC closes without waiting out the drain).
    if (conn.quic) {
      const quic = conn.quic;
      setImmediate(() => quic.close());
    }
  }

  async #pump(conn: Connection): Promise<void> {
    for (;;) {
      const next = await conn.messages.next();
      if (next.done) break;
      const message = next.value;
      const body = message.body;
      if (body.case === "config") {
        this.#onConfig(body.value);
        continue;
      }
      if (message.seq !== 0n) {
        const seq = Number(message.seq);
        // Seen already (replayed on resume, or sent on both sides of a certificate handover).
        if (seq <= this.#lastSeq) continue;
        this.#lastSeq = seq;
      }
      if (body.case === "dispatch") this.#runner.dispatch(body.value as DispatchInput);
      else if (body.case === "cancel") this.#runner.cancel(body.value.requestId);
      else if (body.case === "goAway") {
        this.#goodbyeAt = this.#clock.now();
        this.#goodbyeSpreadMs = body.value.reconnectSpreadMs;
        this.#emit("goaway", body.value.reason);
        // Our side ends too, so the session is over now rather than when the connection drops.
        conn.stream.end();
      } else if (body.case === "renew")
        this.renewNow(body.value.reason || "gateway asked").catch(() => undefined);
    }
    await conn.stream.done;
  }

  #onConfig(config: { epoch: string; resumed: boolean }): void {
    // A new epoch (the gateway restarted): its sequence starts again.
    if (config.epoch !== this.#epoch) {
      this.#epoch = config.epoch;
      this.#lastSeq = 0;
    } else if (!config.resumed) this.#emit("resume_gap", "some gateway events were not kept");
  }

  #send(message: NodeMessage): Promise<void> {
    const conn = this.#current;
    if (!conn) return Promise.reject(new Error("not connected"));
    return conn.stream.send(message);
  }

  /** At the certificate's renewal point (jittered), or now when the gateway's hint says so. */
  #scheduleRenewal(hintMs: number): void {
    const own = renewalDelayMs(this.#credentials.clientCertPem, this.#clock.now(), this.#random);
    this.#armRenewal(hintMs === 0 ? 0 : own);
  }

  #armRenewal(delayMs: number): void {
    this.#scheduler.clearTimeout(this.#renewTimer);
    this.#nextRenewalAt = this.#clock.now() + delayMs;
    this.#renewTimer = this.#scheduler.setTimeout(() => {
      this.renewNow("scheduled").catch(() => undefined);
    }, delayMs);
  }

  async #renew(reason: string): Promise<void> {
    const conn = this.#current;
    if (!conn || this.#stop.signal.aborted) return;
    this.#emit("renewing", reason);
    let fresh: Connection;
    try {
      const renewed = await renewCredentials({
        rpc: conn.rpc,
        deviceId: this.#options.deviceId,
        credentials: this.#credentials,
        sign: this.#options.sign,
        now: this.#clock.now(),
      });
      // Stored before use: a crash now restarts on the new certificate (or, had the write failed, on
      // the old one, which the gateway still accepts during the overlap and answers with "renew now").
      await this.#options.saveCredentials?.(renewed);
      this.#credentials = renewed;
      this.#emit("renewed", new Date(certificateExpiry(renewed.clientCertPem)).toISOString());
      fresh = await this.#open(renewed);
    } catch (err) {
      this.#lastError = `renewal failed: ${(err as Error).message}`;
      this.#emit("renew_failed", (err as Error).message);
      const left = certificateExpiry(this.#credentials.clientCertPem) - this.#clock.now();
      this.#armRenewal(Math.max(RENEW_RETRY_MIN_MS, Math.min(limits.renewRetryMaxMs, left / 10)));
      throw err;
    }
    if (this.#stop.signal.aborted || this.#current !== conn) {
      this.#close(fresh);
      return;
    }
    // Make before break: the new connection is registered and has said Hello (so the gateway now
    // dispatches there); then the old stream is half-closed and #session moves over when it ends.
    this.#handover = fresh;
    this.#current = fresh;
    conn.stream.end();
    this.#emit("handover", "now on the renewed certificate");
    this.#scheduleRenewal(fresh.renewHintMs);
  }

  #emit(kind: string, detail?: string): void {
    this.#options.onEvent?.({ kind, ...(detail === undefined ? {} : { detail }) });
  }
}

function certificateExpiry(certPem: string): number {
  return Date.parse(new X509Certificate(certPem).validTo);
}
