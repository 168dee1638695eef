import { onAbortUntil } from "../../common/abort.js";
import type { Clock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import type { NodeRepository, PresenceRepository, StoreSignals } from "../../store/ports.js";
import { type CapabilityRequestRecord, TERMINAL_STATES } from "../../store/records.js";
import type { Logger } from "../logger.js";
import { NODE_DISCONNECTED, type NodeRuntime, type RemoteNodes } from "./node-runtime.js";

const GONE = `${NODE_DISCONNECTED}: the gateway holding the node's session stopped answering`;

/**
 * Nodes across the gateways of a cluster. Each gateway beats (one row, every 2 s) and claims the
 * sessions it holds. A call for a node held elsewhere is written once, as a queued row naming the
 * holder; the row's NOTIFY wakes the holder, which pushes it down the node's session and writes the
 * outcome, whose NOTIFY wakes the caller's gateway. The caller's gateway times the call out if the holder
 * never ends it; then the holder tells the node to stop. A gateway silent for 10 s is reaped by the
 * others: its claims dropped, its unfinished calls failed with node_disconnected.
 */
export class ClusterNodes implements RemoteNodes {
  readonly #runtime: NodeRuntime;
  readonly #nodes: NodeRepository;
  readonly #presence: PresenceRepository;
  readonly #signals: StoreSignals;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #gatewayId: string;
  /** device id -> gateway id, as last read, with this gateway's own sessions kept current. */
  #holders = new Map<string, string>();
  readonly #local = new Set<string>();
  readonly #waiting = new Map<string, () => void>();
  readonly #timers: NodeJS.Timeout[] = [];
  #unsubscribe: (() => void) | undefined;

  constructor(deps: {
    runtime: NodeRuntime;
    nodes: NodeRepository;
    presence: PresenceRepository;
    signals: StoreSignals;
    clock: Clock;
    logger: Logger;
    gatewayId: string;
  }) {
    this.#runtime = deps.runtime;
    this.#nodes = deps.nodes;
    this.#presence = deps.presence;
    this.#signals = deps.signals;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#gatewayId = deps.gatewayId;
  }

  /** Drops what this gateway's last run left (its claims, its calls), then beats and listens. */
  async start(): Promise<void> {
    const left = await this.#presence.reap(this.#gatewayId, this.#clock.now(), "gateway restarted");
    if (left.failed + left.sessions > 0) this.#logger.info(left, "cleared what this gateway's last run held");
    await this.#presence.beat(this.#gatewayId, this.#clock.now());
    this.#unsubscribe = this.#signals.subscribe("node_request", (id) => this.#onRequest(id));
    await this.#refresh();
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const timer = setInterval(() => {
        fn().catch((err: Error) => this.#logger.warn({ err: err.message }, "cluster upkeep failed"));
      }, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(limits.gatewayBeatIntervalMs, () => this.#presence.beat(this.#gatewayId, this.#clock.now()));
    every(limits.clusterHoldersRefreshMs, () => this.#refresh());
    every(limits.clusterReapIntervalMs, () => this.#reap());
  }

  stop(): void {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    this.#unsubscribe?.();
  }

  /** A clean stop: this gateway's claims go at once, so no caller waits for the reaper. */
  async leave(): Promise<void> {
    this.stop();
    await this.#presence.reap(this.#gatewayId, this.#clock.now(), "gateway stopped");
  }

  holder(deviceId: string): string | undefined {
    const holder = this.#holders.get(deviceId);
    return holder !== undefined && holder !== this.#gatewayId ? holder : undefined;
  }

  attached(deviceId: string): void {
    this.#local.add(deviceId);
    this.#holders.set(deviceId, this.#gatewayId);
    this.#presence
      .claim(deviceId, this.#gatewayId, this.#clock.now())
      .catch((err: Error) => this.#logger.warn({ device_id: deviceId, err: err.message }, "claim failed"));
  }

  detached(deviceId: string): void {
    this.#local.delete(deviceId);
    if (this.#holders.get(deviceId) === this.#gatewayId) this.#holders.delete(deviceId);
    this.#presence
      .release(deviceId, this.#gatewayId)
      .catch((err: Error) => this.#logger.warn({ device_id: deviceId, err: err.message }, "release failed"));
  }

  async invoke(record: CapabilityRequestRecord, signal?: AbortSignal): Promise<CapabilityRequestRecord> {
    const id = record.requestId;
    let check = () => {};
    let finish = (_: Partial<CapabilityRequestRecord>) => {};
    const outcome = new Promise<CapabilityRequestRecord>((resolve) => {
      let done = false;
      check = () => {
        this.#nodes.request(id).then(
          (row) => {
            if (done || !row || !TERMINAL_STATES.has(row.state)) return;
            done = true;
            this.#waiting.delete(id);
            clearTimeout(timer);
            resolve(row);
          },
          (err: Error) => this.#logger.warn({ request_id: id, err: err.message }, "reading a call failed"),
        );
      };
      // Ends the call from this side; a row already terminal stays as it is (updateRequest refuses).
      // The holder hears of it by the row's NOTIFY and tells the node to stop.
      finish = (end) => {
        this.#nodes
          .updateRequest({ ...record, ...end, finishedAt: this.#clock.now() })
          .finally(check)
          .catch(() => undefined);
      };
      // The holder's deadline timer goes first; this one ends a call whose holder went quiet.
      const timer = setTimeout(
        () => finish({ state: "timed_out", error: "deadline exceeded" }),
        Math.max(0, record.deadlineAt - this.#clock.now()) + limits.clusterResultGraceMs,
      );
    });
    this.#waiting.set(id, check);
    try {
      await this.#nodes.createRequest(record);
    } catch (err) {
      this.#waiting.delete(id);
      throw err;
    }
    check(); // the holder may have answered before this gateway listened for it
    // Listened for once the row exists, so a cancel cannot land before the call it cancels.
    onAbortUntil(signal, outcome, () => finish({ state: "cancelled", error: "the caller went away" }));
    return outcome;
  }

  /** Every change to a call, anywhere in the cluster. Rows are re-read: a payload is only a hint. */
  #onRequest(id: string): void {
    const waiting = this.#waiting.get(id);
    if (waiting) {
      waiting();
      return;
    }
    this.#nodes.request(id).then(
      async (row) => {
        if (!row) return;
        if (TERMINAL_STATES.has(row.state)) {
          this.#runtime.abandon(id, "ended by the caller's gateway");
          return;
        }
        if (row.gatewayId !== this.#gatewayId || row.state !== "queued") return;
        if (this.#runtime.adopt(row)) return;
        // Not connected here (any more): the caller learns it now rather than at its deadline.
        const now = this.#clock.now();
        await this.#nodes.updateRequest({
          ...row,
          state: "failed",
          finishedAt: now,
          error: `${NODE_DISCONNECTED}: the node is not connected to the gateway it was sent to`,
        });
      },
      (err: Error) => this.#logger.warn({ request_id: id, err: err.message }, "reading a call failed"),
    );
  }

  async #refresh(): Promise<void> {
    const holders = await this.#presence.holders(this.#clock.now() - limits.gatewayDeadAfterMs);
    for (const [deviceId, holder] of holders) if (holder === this.#gatewayId) holders.delete(deviceId);
    for (const deviceId of this.#local) holders.set(deviceId, this.#gatewayId);
    this.#holders = holders;
  }

  async #reap(): Promise<void> {
    const dead = await this.#presence.deadGateways(this.#clock.now() - limits.gatewayDeadAfterMs);
    for (const gatewayId of dead) {
      if (gatewayId === this.#gatewayId) continue;
      const reaped = await this.#presence.reap(gatewayId, this.#clock.now(), GONE);
      this.#logger.warn({ gateway_id: gatewayId, ...reaped }, "a gateway stopped answering: reaped it");
      for (const [deviceId, holder] of this.#holders)
        if (holder === gatewayId) this.#holders.delete(deviceId);
    }
  }
}
