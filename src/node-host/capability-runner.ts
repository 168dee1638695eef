import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Clock } from "../common/clock.js";
import { CapabilityRunState, type NodeMessageSchema } from "../gen/palyra/v1/node_pb.js";
import { type Capability, CapabilityError } from "./capabilities.js";

export interface DispatchInput {
  requestId: string;
  capability: string;
  inputJson: string;
  deadlineUnixMs: bigint;
}

type NodeMessage = MessageInitShape<typeof NodeMessageSchema>;

export interface CapabilityRunnerOptions {
  deviceId: string;
  capabilities: readonly Capability[];
  consent: (question: string) => Promise<boolean>;
  concurrency: number;
  clock: Clock;
  send: (message: NodeMessage) => Promise<void>;
  onEvent: (kind: string, detail: string) => void;
}

/**
 * Runs dispatched capabilities: at most `concurrency` at once (the rest wait in arrival order), each
 * within its deadline, each cancellable. Reports running / awaiting-consent states and one result per
 * call; a cancelled call sends no result (the gateway has already given up on it).
 */
export class CapabilityRunner {
  readonly #o: CapabilityRunnerOptions;
  readonly #running = new Map<string, AbortController>();
  readonly #waiting: { dispatch: DispatchInput; controller: AbortController }[] = [];

  constructor(options: CapabilityRunnerOptions) {
    this.#o = options;
  }

  get running(): number {
    return this.#running.size;
  }

  dispatch(dispatch: DispatchInput): void {
    const controller = new AbortController();
    if (this.#running.size < this.#o.concurrency) this.#start(dispatch, controller);
    else this.#waiting.push({ dispatch, controller });
  }

  /** Cancel from the gateway (deadline passed, operator): aborts the call or drops it from the queue. */
  cancel(requestId: string): void {
    const running = this.#running.get(requestId);
    if (running) {
      running.abort();
      return;
    }
    const index = this.#waiting.findIndex((w) => w.dispatch.requestId === requestId);
    if (index >= 0) {
      this.#waiting.splice(index, 1);
      this.#o.onEvent("cancelled", `${requestId}: cancelled before it started`);
    }
  }

  cancelAll(): void {
    this.#waiting.length = 0;
    for (const controller of this.#running.values()) controller.abort();
  }

  #start(dispatch: DispatchInput, controller: AbortController): void {
    this.#running.set(dispatch.requestId, controller);
    void this.#run(dispatch, controller).finally(() => {
      this.#running.delete(dispatch.requestId);
      const next = this.#waiting.shift();
      if (next) this.#start(next.dispatch, next.controller);
    });
  }

  async #run(dispatch: DispatchInput, controller: AbortController): Promise<void> {
    const capability = this.#o.capabilities.find((c) => c.name === dispatch.capability);
    const timeout = setTimeout(
      () => controller.abort(),
      Math.max(0, Number(dispatch.deadlineUnixMs) - this.#o.clock.now()),
    );
    const state = (s: CapabilityRunState) =>
      this.#o.send({ body: { case: "capabilityState", value: { requestId: dispatch.requestId, state: s } } });
    const result = { requestId: dispatch.requestId, success: false, outputJson: "", error: "" };
    try {
      if (!capability) throw new CapabilityError(`this node does not offer ${dispatch.capability}`);
      await state(CapabilityRunState.RUNNING);
      this.#o.onEvent("running", `${dispatch.requestId} ${dispatch.capability}`);
      const input = JSON.parse(dispatch.inputJson) as unknown;
      const aborted = new Promise<never>((_, reject) =>
        controller.signal.addEventListener("abort", () => reject(new CapabilityError("cancelled")), {
          once: true,
        }),
      );
      const output = await Promise.race([
        capability.run(input, {
          deviceId: this.#o.deviceId,
          signal: controller.signal,
          consent: this.#o.consent,
          awaitingMediation: () => {
            state(CapabilityRunState.AWAITING_LOCAL_MEDIATION).catch(() => undefined);
          },
        }),
        aborted,
      ]);
      Object.assign(result, { success: true, outputJson: JSON.stringify(output ?? null) });
    } catch (err) {
      result.error =
        err instanceof CapabilityError ? err.message : `capability failed: ${(err as Error).message}`;
      this.#o.onEvent(
        controller.signal.aborted ? "cancelled" : "failed",
        `${dispatch.requestId} ${dispatch.capability}: ${result.error}`,
      );
    } finally {
      clearTimeout(timeout);
    }
    if (!controller.signal.aborted)
      await this.#o.send({ body: { case: "capabilityResult", value: result } }).catch(() => undefined);
  }
}
