import { platform } from "node:os";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { splitHostPort } from "../common/host-port.js";
import { VERSION } from "../common/version.js";
import { CapabilityRunState, type NodeMessageSchema, NodeService } from "../gen/palyra/v1/node_pb.js";
import type { DeviceCredentials } from "../pairing/device-store.js";
import { NodePortClient } from "../transport/grpc/client.js";
import type { RpcError } from "../transport/grpc/rpc-error.js";
import { type Capability, CapabilityError } from "./capabilities.js";

export type NodeSessionState = "connecting" | "connected" | "backing_off" | "stopping" | "stopped";

export interface NodeSessionOptions {
  deviceId: string;
  credentials: DeviceCredentials;
  capabilities: readonly Capability[];
  consent: (question: string) => Promise<boolean>;
  concurrency?: number;
  onEvent?: (event: { kind: string; detail?: string }) => void;
}

const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

/**
 * One node host's session with its gateway: register, keep the Connect stream open with heartbeats, run
 * dispatched capabilities concurrently within their deadlines, honour Cancel, and reconnect with
 * jittered exponential backoff (1 s to 30 s) until stopped.
 */
export class NodeSession {
  readonly #options: NodeSessionOptions;
  readonly #running = new Map<string, AbortController>();
  /** Dispatches waiting for a free slot (at most `concurrency` run at once). */
  readonly #waiting: (() => void)[] = [];
  #state: NodeSessionState = "connecting";
  #stop = new AbortController();
  #done: Promise<void> | undefined;

  constructor(options: NodeSessionOptions) {
    this.#options = options;
  }

  state(): NodeSessionState {
    return this.#state;
  }

  start(): Promise<void> {
    this.#done ??= this.#loop();
    return this.#done;
  }

  /** Half-closes the stream (the goodbye), cancels running calls, and resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#state = "stopping";
    this.#stop.abort();
    for (const controller of this.#running.values()) controller.abort();
    await this.#done;
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
        this.#emit("disconnected", (err as RpcError).message);
      }
      if (this.#stop.signal.aborted) break;
      failures++;
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(failures - 1, 5));
      const delay = base * (0.5 + Math.random() * 0.5);
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

  async #session(onConnected: () => void): Promise<void> {
    const { credentials, deviceId } = this.#options;
    const { host, port } = splitHostPort(credentials.gateway);
    const client = new NodePortClient({
      host,
      port,
      pinnedCa: credentials.caCertPem,
      clientIdentity: { certChainPem: credentials.clientCertPem, keyPem: credentials.clientKeyPem },
    });
    try {
      const rpc = client.service(NodeService);
      const registered = await rpc.registerNode({
        deviceId,
        platform: platform(),
        version: VERSION,
        capabilities: this.#options.capabilities.map((c) => ({
          name: c.name,
          requiresMediation: c.requiresMediation,
          description: c.description,
        })),
      });
      const stream = rpc.connect();
      const stopStream = () => stream.end();
      this.#stop.signal.addEventListener("abort", stopStream, { once: true });
      await stream.send({ body: { case: "hello", value: { deviceId } } });
      this.#state = "connected";
      onConnected();
      this.#emit("connected", credentials.gateway);
      const heartbeat = setInterval(() => {
        stream
          .send({ body: { case: "heartbeat", value: { sentAtUnixMs: BigInt(Date.now()) } } })
          .catch(() => undefined);
      }, registered.heartbeatIntervalMs);
      try {
        for await (const message of stream) {
          const body = message.body;
          if (body.case === "dispatch")
            void this.#schedule(() => this.#run(body.value, (m) => stream.send(m)));
          else if (body.case === "cancel") this.#running.get(body.value.requestId)?.abort();
          else if (body.case === "goAway") this.#emit("goaway", body.value.reason);
        }
        await stream.done;
      } finally {
        clearInterval(heartbeat);
        this.#stop.signal.removeEventListener("abort", stopStream);
      }
    } finally {
      client.close();
    }
  }

  async #schedule(task: () => Promise<void>): Promise<void> {
    if (this.#running.size >= (this.#options.concurrency ?? 4))
      await new Promise<void>((r) => this.#waiting.push(r));
    try {
      await task();
    } finally {
      this.#waiting.shift()?.();
    }
  }

  async #run(
    dispatch: { requestId: string; capability: string; inputJson: string; deadlineUnixMs: bigint },
    send: (m: MessageInitShape<typeof NodeMessageSchema>) => Promise<void>,
  ): Promise<void> {
    const capability = this.#options.capabilities.find((c) => c.name === dispatch.capability);
    const controller = new AbortController();
    this.#running.set(dispatch.requestId, controller);
    const timeout = setTimeout(
      () => controller.abort(),
      Math.max(0, Number(dispatch.deadlineUnixMs) - Date.now()),
    );
    const result = { requestId: dispatch.requestId, success: false, outputJson: "", error: "" };
    try {
      if (!capability) throw new CapabilityError(`this node does not offer ${dispatch.capability}`);
      await send({
        body: {
          case: "capabilityState",
          value: { requestId: dispatch.requestId, state: CapabilityRunState.RUNNING },
        },
      });
      const input = JSON.parse(dispatch.inputJson) as unknown;
      const output = await Promise.race([
        capability.run(input, {
          deviceId: this.#options.deviceId,
          signal: controller.signal,
          consent: this.#options.consent,
          awaitingMediation: () => {
            send({
              body: {
                case: "capabilityState",
                value: { requestId: dispatch.requestId, state: CapabilityRunState.AWAITING_LOCAL_MEDIATION },
              },
            }).catch(() => undefined);
          },
        }),
        new Promise<never>((_, reject) =>
          controller.signal.addEventListener("abort", () => reject(new CapabilityError("cancelled")), {
            once: true,
          }),
        ),
      ]);
      Object.assign(result, { success: true, outputJson: JSON.stringify(output ?? null) });
    } catch (err) {
      result.error =
        err instanceof CapabilityError ? err.message : `capability failed: ${(err as Error).message}`;
      this.#emit(
        controller.signal.aborted ? "cancelled" : "failed",
        `${dispatch.capability}: ${result.error}`,
      );
    } finally {
      clearTimeout(timeout);
      this.#running.delete(dispatch.requestId);
    }
    if (!controller.signal.aborted)
      await send({ body: { case: "capabilityResult", value: result } }).catch(() => undefined);
  }

  #emit(kind: string, detail?: string): void {
    this.#options.onEvent?.({ kind, ...(detail === undefined ? {} : { detail }) });
  }
}
