import { onAbortUntil } from "../../common/abort.js";
import type { Clock } from "../../common/clock.js";
import { newId } from "../../common/ids.js";
import { limits } from "../../common/limits.js";
import type { Random } from "../../common/random.js";
import { reconnectSpreadFor } from "../../common/reconnect-policy.js";
import type { Scheduler } from "../../common/scheduler.js";
import type { NodeRepository } from "../../store/ports.js";
import {
  type CapabilityRecord,
  type CapabilityRequestRecord,
  type NodeRecord,
  TERMINAL_STATES,
} from "../../store/records.js";
import { NodeRuntimeError } from "./errors.js";

/** What the gateway pushes down a node's session (the transport turns it into GatewayMessage). */
/** The error a call gets when its node's session ends before the node answered. */
export const NODE_DISCONNECTED = "node_disconnected";
const DISCONNECTED_DETAIL = "the node's session ended before it answered";

export type NodeCommand =
  | {
      kind: "dispatch";
      requestId: string;
      capability: string;
      inputJson: string;
      maxPayloadBytes: number;
      deadlineUnixMs: number;
    }
  | { kind: "cancel"; requestId: string; reason: string }
  | { kind: "renew"; reason: string };

export interface NodeSessionSink {
  /** Pushes one event down the session; `seq` is its place in the node's sequence. */
  send(command: NodeCommand, seq: number): void;
  /** Largest capability payload the session's transport carries (QUIC frames are smaller than gRPC's). */
  readonly maxPayloadBytes?: number;
  /** Says goodbye (GoAway with the reason and the reconnect spread) and ends the session; resolves
   *  once the message is out. */
  goodbye?(reason: string, reconnectSpreadMs: number): Promise<void>;
}

/** Where a reconnecting node says it left off (from its Hello). */
export interface ResumePoint {
  epoch: string;
  resumeFrom: number;
}

/** What attaching a session gives its transport: the events to replay first, then new ones follow. */
export interface AttachedSession {
  detach: () => void;
  epoch: string;
  /** True when the replay continues the node's sequence without a gap. */
  resumed: boolean;
  replay: { seq: number; command: NodeCommand }[];
}

/**
 * A node's recent events, numbered, so a session that reconnects after losing some (a dead connection
 * the gateway had not noticed yet) gets them again, in order, and no others. Bounded by count and bytes.
 */
interface Outbox {
  lastSeq: number;
  events: { seq: number; command: NodeCommand; bytes: number }[];
  bytes: number;
}

export type Presence = "online" | "stale" | "offline";

/**
 * Nodes connected to the other gateways of a cluster (see cluster-nodes.ts): who holds a session, and
 * how a call reaches a node held elsewhere (a row the holder picks up, the outcome read back).
 */
export interface RemoteNodes {
  /** The other live gateway holding the node's session, if one does. */
  holder(deviceId: string): string | undefined;
  /** Stores the call for the holder and resolves with it once terminal. An aborted `signal` (the
   *  caller went away) cancels it; the holder then tells the node to stop. */
  invoke(record: CapabilityRequestRecord, signal?: AbortSignal): Promise<CapabilityRequestRecord>;
  /** A session attached here, or its last one here ended. */
  attached(deviceId: string): void;
  detached(deviceId: string): void;
}

/** A capability as operators see it (snake_case, like every API field). */
export interface CapabilityView {
  name: string;
  requires_mediation: boolean;
  description: string;
}

export function capabilityView(c: CapabilityRecord): CapabilityView {
  return { name: c.name, requires_mediation: c.requiresMediation, description: c.description };
}

export interface InvokeOptions {
  timeoutMs?: number;
  maxPayloadBytes?: number;
  /** The caller went away (its connection closed, its device revoked): the node is told to stop. */
  signal?: AbortSignal;
}

interface Session {
  sink: NodeSessionSink;
  lastHeartbeat: number;
}

interface InFlight {
  record: CapabilityRequestRecord;
  timer: unknown;
  settle: (record: CapabilityRequestRecord) => void;
  /** The request's writes, in order: each state change is stored after the one before it. */
  write: Promise<unknown>;
}

/**
 * The gateway side of nodes: registration, presence, and capability calls pushed the moment they are
 * queued, with deadlines, Cancel on timeout and results accepted only from the node dispatched to.
 * Every state change is persisted; terminal states never change.
 */
export class NodeRuntime {
  readonly #repo: NodeRepository;
  readonly #clock: Clock;
  readonly #scheduler: Scheduler;
  readonly #random: Random;
  readonly #sessions = new Map<string, Session>();
  readonly #inFlight = new Map<string, InFlight>();
  readonly #outboxes = new Map<string, Outbox>();
  /** Registered nodes as stored (read through: invoke needs the capabilities on every call). */
  readonly #nodeCache = new Map<string, NodeRecord>();
  /** When each node was last heard from in this run (registration, heartbeat, disconnect): in memory,
   *  so presence costs no write per heartbeat. */
  readonly #seen = new Map<string, number>();
  /** Names this run's event sequences: sequences restart when the gateway does. */
  readonly #epoch: string;
  /** Names this gateway in the rows of the calls it holds (see failUnfinished). */
  readonly #gatewayId: string;
  #remote: RemoteNodes | undefined;

  /** Told when presence, registration or a request changes (the console's live updates). */
  readonly #onChange: (deviceId: string) => void;
  readonly #onDisconnected: (deviceId: string) => void;

  constructor(deps: {
    repo: NodeRepository;
    clock: Clock;
    scheduler: Scheduler;
    random: Random;
    /** Stable across restarts of this gateway; defaults to "local" (one gateway on its own database). */
    gatewayId?: string;
    /** Several gateways on one database: nodes held by the others. */
    remote?: RemoteNodes;
    onChange?: (deviceId: string) => void;
    /** A node's last session ended. */
    onDisconnected?: (deviceId: string) => void;
  }) {
    this.#onChange = deps.onChange ?? (() => {});
    this.#onDisconnected = deps.onDisconnected ?? (() => {});
    this.#repo = deps.repo;
    this.#clock = deps.clock;
    this.#scheduler = deps.scheduler;
    this.#random = deps.random;
    this.#epoch = this.#random.bytes(8).toString("hex");
    this.#gatewayId = deps.gatewayId ?? "local";
    this.#remote = deps.remote;
  }

  /** At start: whatever a crash left unfinished is failed, and old terminal requests are pruned. */
  async reconcile(): Promise<{ failed: number; pruned: number }> {
    const now = this.#clock.now();
    return {
      failed: await this.#repo.failUnfinished(now, "gateway restarted", this.#gatewayId),
      pruned: await this.#repo.pruneTerminal(now - limits.terminalRequestRetentionMs),
    };
  }

  async register(
    deviceId: string,
    info: { platform: string; version: string; capabilities: CapabilityRecord[] },
  ): Promise<{ heartbeatIntervalMs: number }> {
    const names = new Set<string>();
    for (const c of info.capabilities) {
      if (!/^[a-z][a-z0-9._-]{0,63}$/.test(c.name) || names.has(c.name))
        throw new NodeRuntimeError(
          "invalid_input",
          `capability names are unique [a-z][a-z0-9._-]{0,63}: ${c.name.slice(0, 64)}`,
        );
      names.add(c.name);
    }
    const now = this.#clock.now();
    const existing = await this.#node(deviceId);
    // A node re-registers on every connect with what it had: that needs no write (nor an audit entry),
    // which keeps a reconnect storm of thousands of nodes off the disk.
    if (existing && sameRegistration(existing, info)) {
      this.#seen.set(deviceId, now);
      this.#onChange(deviceId);
      return { heartbeatIntervalMs: limits.heartbeatIntervalMs };
    }
    const record = { deviceId, ...info, registeredAt: existing?.registeredAt ?? now, updatedAt: now };
    await this.#repo.saveNode(record, {
      kind: "node.registered",
      actor: `device:${deviceId}`,
      deviceId,
      detail: { capabilities: info.capabilities.length },
    });
    this.#nodeCache.set(deviceId, record);
    this.#seen.set(deviceId, now);
    this.#onChange(deviceId);
    return { heartbeatIntervalMs: limits.heartbeatIntervalMs };
  }

  /**
   * A session opened; it replaces an older one of the same node. When the node resumes from a point
   * of this run's sequence, the events after it come back to be replayed before any new one.
   */
  attach(deviceId: string, sink: NodeSessionSink, resume?: ResumePoint): AttachedSession {
    const session: Session = { sink, lastHeartbeat: this.#clock.now() };
    this.#sessions.set(deviceId, session);
    this.#remote?.attached(deviceId);
    this.#onChange(deviceId);
    const outbox = this.#outboxes.get(deviceId);
    let resumed = false;
    let replay: AttachedSession["replay"] = [];
    const lastSeq = outbox?.lastSeq ?? 0;
    if (resume && resume.epoch === this.#epoch && resume.resumeFrom <= lastSeq) {
      const events = outbox?.events ?? [];
      // Resumed when nothing after the node's point was dropped from the bounded buffer.
      resumed = resume.resumeFrom >= (events[0]?.seq ?? lastSeq + 1) - 1;
      replay = events.filter((e) => e.seq > resume.resumeFrom).map(({ seq, command }) => ({ seq, command }));
    }
    return {
      epoch: this.#epoch,
      resumed,
      replay,
      detach: () => {
        if (this.#sessions.get(deviceId) !== session) return;
        this.#sessions.delete(deviceId);
        this.#remote?.detached(deviceId);
        this.#seen.set(deviceId, Math.max(session.lastHeartbeat, this.#clock.now()));
        this.#onDisconnected(deviceId);
        // A node that comes straight back (a dropped connection it resumes) keeps its calls.
        this.#scheduler.setTimeout(() => {
          if (!this.#sessions.has(deviceId)) this.#failInFlight(deviceId);
        }, limits.nodeDisconnectGraceMs);
        this.#onChange(deviceId);
      },
    };
  }

  /** Numbers the event, keeps it for resumption, and pushes it down the live session if there is one. */
  #push(deviceId: string, command: NodeCommand): void {
    let outbox = this.#outboxes.get(deviceId);
    if (!outbox) {
      outbox = { lastSeq: 0, events: [], bytes: 0 };
      this.#outboxes.set(deviceId, outbox);
    }
    const seq = ++outbox.lastSeq;
    const bytes = 256 + (command.kind === "dispatch" ? Buffer.byteLength(command.inputJson) : 0);
    outbox.events.push({ seq, command, bytes });
    outbox.bytes += bytes;
    while (
      outbox.events.length > limits.sessionResumeEvents ||
      (outbox.bytes > limits.sessionResumeBytes && outbox.events.length > 1)
    )
      outbox.bytes -= outbox.events.shift()!.bytes;
    this.#sessions.get(deviceId)?.sink.send(command, seq);
  }

  /** Tells every connected node goodbye (the gateway is stopping), so they reconnect at once. */
  async goodbyeAll(reason: string): Promise<void> {
    // The more nodes, the wider they spread their reconnects (the gateway takes ~250 handshakes a second).
    const spread = reconnectSpreadFor(this.#sessions.size);
    await Promise.all(
      [...this.#sessions.values()].map((s) => s.sink.goodbye?.(reason, spread).catch(() => undefined)),
    );
  }

  /** Asks a connected node to renew its certificate now; false when it has no session. */
  requestRenewal(deviceId: string, reason: string): boolean {
    const session = this.#sessions.get(deviceId);
    if (!session) return false;
    this.#push(deviceId, { kind: "renew", reason });
    return true;
  }

  heartbeat(deviceId: string): void {
    const session = this.#sessions.get(deviceId);
    if (session) session.lastHeartbeat = this.#clock.now();
  }

  presence(deviceId: string): Presence {
    const session = this.#sessions.get(deviceId);
    if (!session) return this.#remote?.holder(deviceId) ? "online" : "offline";
    const silentFor = this.#clock.now() - session.lastHeartbeat;
    return silentFor > limits.heartbeatIntervalMs * limits.stalePresenceIntervals ? "stale" : "online";
  }

  /** Queues, pushes at once, and resolves with the request when it reaches a terminal state. */
  invoke(
    deviceId: string,
    capability: string,
    inputJson: string,
    options: InvokeOptions = {},
  ): Promise<CapabilityRequestRecord> {
    const timeoutMs = options.timeoutMs ?? limits.invokeDefaultTimeoutMs;
    let maxPayloadBytes = options.maxPayloadBytes ?? limits.invokeDefaultPayloadBytes;
    if (
      !Number.isInteger(timeoutMs) ||
      timeoutMs < limits.invokeMinTimeoutMs ||
      timeoutMs > limits.invokeMaxTimeoutMs
    )
      throw new NodeRuntimeError("invalid_input", "timeout must be 1 to 120 seconds");
    if (
      !Number.isInteger(maxPayloadBytes) ||
      maxPayloadBytes < 1 ||
      maxPayloadBytes > limits.invokeMaxPayloadBytes
    )
      throw new NodeRuntimeError(
        "invalid_input",
        `max payload must be 1 byte to ${limits.invokeMaxPayloadBytes / 1024 / 1024} MiB`,
      );
    if (Buffer.byteLength(inputJson) > maxPayloadBytes)
      throw new NodeRuntimeError("payload_too_large", `input is larger than ${maxPayloadBytes} bytes`);
    const session = this.#sessions.get(deviceId);
    if (!session) {
      const holder = this.#remote?.holder(deviceId);
      if (!holder) throw new NodeRuntimeError("node_offline", `node ${deviceId} is not connected`);
      return this.#invokeElsewhere(holder, deviceId, capability, inputJson, maxPayloadBytes, {
        timeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    }
    const carried = session.sink.maxPayloadBytes ?? limits.invokeMaxPayloadBytes;
    if (Buffer.byteLength(inputJson) > carried)
      throw new NodeRuntimeError(
        "payload_too_large",
        `input is larger than the ${carried} bytes node ${deviceId}'s transport carries`,
      );
    maxPayloadBytes = Math.min(maxPayloadBytes, carried);
    // A node with a session registered in this run, so its record is in the cache.
    const node = this.#nodeCache.get(deviceId);
    if (!node?.capabilities.some((c) => c.name === capability))
      throw new NodeRuntimeError("capability_unknown", `node ${deviceId} does not offer ${capability}`);
    let queued = 0;
    for (const f of this.#inFlight.values()) if (f.record.deviceId === deviceId) queued++;
    if (queued >= limits.nodeQueueLimit)
      throw new NodeRuntimeError("queue_full", `node ${deviceId} already has ${queued} calls in flight`);

    const now = this.#clock.now();
    const record: CapabilityRequestRecord = {
      requestId: newId(this.#clock, this.#random),
      deviceId,
      capability,
      inputJson,
      maxPayloadBytes,
      // Pushed in this same turn, so it is stored as dispatched at once: one write, not two.
      state: "dispatched",
      createdAt: now,
      dispatchedAt: now,
      deadlineAt: now + timeoutMs,
      gatewayId: this.#gatewayId,
    };
    // The slot is taken now (the queue limit holds for calls arriving while this one is written); the
    // call is pushed once its row is stored, so a crash never leaves a dispatched call unrecorded.
    const flight: InFlight = { record, timer: undefined, settle: () => {}, write: Promise.resolve() };
    const settled = new Promise<CapabilityRequestRecord>((resolve) => {
      flight.settle = resolve;
    });
    this.#inFlight.set(record.requestId, flight);
    onAbortUntil(options.signal, settled, () => this.#cancel(record.requestId, "the caller went away"));
    flight.write = this.#repo.createRequest(record);
    return flight.write.then(
      () => {
        if (TERMINAL_STATES.has(flight.record.state)) return settled;
        flight.timer = this.#scheduler.setTimeout(() => this.#timeout(record.requestId), timeoutMs);
        this.#push(deviceId, {
          kind: "dispatch",
          requestId: record.requestId,
          capability,
          inputJson,
          maxPayloadBytes,
          deadlineUnixMs: record.deadlineAt,
        });
        return settled;
      },
      (err: unknown) => {
        this.#inFlight.delete(record.requestId);
        throw err;
      },
    );
  }

  /** Several gateways on one database: nodes held by the others (set once, before sessions attach). */
  attachRemote(remote: RemoteNodes): void {
    this.#remote = remote;
  }

  /** A node held by another gateway: the row is written for that gateway, which pushes it. */
  async #invokeElsewhere(
    holder: string,
    deviceId: string,
    capability: string,
    inputJson: string,
    maxPayloadBytes: number,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<CapabilityRequestRecord> {
    const node = await this.#repo.node(deviceId);
    if (!node?.capabilities.some((c) => c.name === capability))
      throw new NodeRuntimeError("capability_unknown", `node ${deviceId} does not offer ${capability}`);
    const now = this.#clock.now();
    return this.#remote!.invoke(
      {
        requestId: newId(this.#clock, this.#random),
        deviceId,
        capability,
        inputJson,
        maxPayloadBytes,
        state: "queued",
        createdAt: now,
        deadlineAt: now + options.timeoutMs,
        gatewayId: holder,
      },
      options.signal,
    );
  }

  /**
   * A call another gateway stored for a node connected here: pushed like a local one, and its outcome
   * written to the row, where the caller's gateway reads it. False when it cannot be taken here.
   */
  adopt(record: CapabilityRequestRecord): boolean {
    if (record.state !== "queued" || this.#inFlight.has(record.requestId)) return false;
    if (!this.#sessions.has(record.deviceId)) return false;
    const now = this.#clock.now();
    const flight: InFlight = {
      record: { ...record, state: "dispatched", dispatchedAt: now },
      timer: undefined,
      settle: () => {},
      write: Promise.resolve(),
    };
    this.#inFlight.set(record.requestId, flight);
    flight.write = this.#repo.updateRequest(flight.record).catch(() => false);
    flight.timer = this.#scheduler.setTimeout(
      () => this.#timeout(record.requestId),
      Math.max(0, record.deadlineAt - now),
    );
    this.#push(record.deviceId, {
      kind: "dispatch",
      requestId: record.requestId,
      capability: record.capability,
      inputJson: record.inputJson,
      maxPayloadBytes: record.maxPayloadBytes,
      deadlineUnixMs: record.deadlineAt,
    });
    return true;
  }

  /** The call ended elsewhere (its caller's gateway timed it out): the node is told to stop. */
  abandon(requestId: string, reason: string): void {
    const flight = this.#inFlight.get(requestId);
    if (!flight || TERMINAL_STATES.has(flight.record.state)) return;
    this.#inFlight.delete(requestId);
    this.#scheduler.clearTimeout(flight.timer);
    this.#push(flight.record.deviceId, { kind: "cancel", requestId, reason });
  }

  /** The node reports progress (running, or waiting for its local user's consent). */
  onState(deviceId: string, requestId: string, state: "running" | "awaiting_local_mediation"): boolean {
    const flight = this.#inFlight.get(requestId);
    if (!flight || flight.record.deviceId !== deviceId) return false;
    return this.#update(requestId, {
      state: state === "running" ? "dispatched" : "awaiting_local_mediation",
    });
  }

  /** A result counts only from the node it was dispatched to and only before the deadline. */
  onResult(
    deviceId: string,
    requestId: string,
    result: { success: boolean; outputJson: string; error: string },
  ): boolean {
    const flight = this.#inFlight.get(requestId);
    if (!flight || flight.record.deviceId !== deviceId) return false;
    const tooLarge = Buffer.byteLength(result.outputJson) > flight.record.maxPayloadBytes;
    return this.#finish(requestId, {
      state: result.success && !tooLarge ? "succeeded" : "failed",
      ...(result.success && !tooLarge ? { outputJson: result.outputJson } : {}),
      ...(tooLarge ? { error: `output is larger than ${flight.record.maxPayloadBytes} bytes` } : {}),
      ...(!result.success ? { error: result.error.slice(0, 4096) || "capability failed" } : {}),
    });
  }

  /** Registered nodes with their presence (for operators). */
  async list(): Promise<
    {
      device_id: string;
      presence: Presence;
      platform: string;
      version: string;
      capabilities: CapabilityView[];
      /** The last heartbeat of the live session, or the last registration when offline. */
      last_seen_at: string;
    }[]
  > {
    return (await this.#repo.nodes()).map((n) => ({
      device_id: n.deviceId,
      presence: this.presence(n.deviceId),
      platform: n.platform,
      version: n.version,
      capabilities: n.capabilities.map(capabilityView),
      last_seen_at: this.#lastSeen(n),
    }));
  }

  /** When the node was last heard from: its live session's last heartbeat, else its last registration. */
  #lastSeen(node: { deviceId: string; updatedAt: number }): string {
    const live = this.#sessions.get(node.deviceId)?.lastHeartbeat;
    return new Date(Math.max(live ?? 0, this.#seen.get(node.deviceId) ?? 0, node.updatedAt)).toISOString();
  }

  /** When a registered node was last heard from (ISO 8601), without listing every node. */
  async lastSeenOf(deviceId: string): Promise<string | undefined> {
    const node = await this.#node(deviceId);
    return node ? this.#lastSeen(node) : undefined;
  }

  /** Nodes by presence, from memory (for /metrics at any fleet size). */
  async presenceCounts(): Promise<Record<Presence, number>> {
    const counts: Record<Presence, number> = { online: 0, stale: 0, offline: 0 };
    const registered = await this.#repo.count();
    for (const deviceId of this.#sessions.keys()) counts[this.presence(deviceId)]++;
    counts.offline = Math.max(0, registered - counts.online - counts.stale);
    return counts;
  }

  async #node(deviceId: string): Promise<NodeRecord | undefined> {
    let node = this.#nodeCache.get(deviceId);
    if (!node) {
      node = await this.#repo.node(deviceId);
      if (node) this.#nodeCache.set(deviceId, node);
    }
    return node;
  }

  /** One node in detail: presence, heartbeat, calls in flight and its latest requests (no payloads). */
  async describe(deviceId: string, recent = 20) {
    const node = await this.#node(deviceId);
    if (!node) throw new NodeRuntimeError("not_found", `no registered node ${deviceId}`);
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    let inFlight = 0;
    for (const f of this.#inFlight.values()) if (f.record.deviceId === deviceId) inFlight++;
    const recentRequests = await this.#repo.recentRequests(deviceId, recent);
    return {
      device_id: node.deviceId,
      presence: this.presence(deviceId),
      platform: node.platform,
      version: node.version,
      registered_at: iso(node.registeredAt),
      updated_at: iso(node.updatedAt),
      last_seen_at: this.#lastSeen(node),
      in_flight: inFlight,
      capabilities: node.capabilities.map(capabilityView),
      recent_requests: recentRequests.map((r) => ({
        request_id: r.requestId,
        capability: r.capability,
        state: r.state,
        created_at: iso(r.createdAt),
        finished_at: iso(r.finishedAt),
        error: r.error ?? null,
      })),
    };
  }

  async request(requestId: string): Promise<CapabilityRequestRecord | undefined> {
    return this.#inFlight.get(requestId)?.record ?? (await this.#repo.request(requestId));
  }

  /**
   * The node's last session ended and it did not come back within the grace: its calls in flight
   * cannot be answered, so their callers learn it now rather than at the deadline. (A renewal hands
   * over to the new session before the old one ends, so this runs only when the node is really gone.)
   * The Cancel is kept for a node that resumes later.
   */
  #failInFlight(deviceId: string): void {
    for (const flight of [...this.#inFlight.values()]) {
      if (flight.record.deviceId !== deviceId) continue;
      const requestId = flight.record.requestId;
      this.#push(deviceId, { kind: "cancel", requestId, reason: NODE_DISCONNECTED });
      this.#finish(requestId, { state: "failed", error: `${NODE_DISCONNECTED}: ${DISCONNECTED_DETAIL}` });
    }
  }

  #cancel(requestId: string, reason: string): void {
    const flight = this.#inFlight.get(requestId);
    if (!flight || TERMINAL_STATES.has(flight.record.state)) return;
    this.#push(flight.record.deviceId, { kind: "cancel", requestId, reason });
    this.#finish(requestId, { state: "cancelled", error: reason });
  }

  #timeout(requestId: string): void {
    const flight = this.#inFlight.get(requestId);
    if (!flight) return;
    this.#push(flight.record.deviceId, { kind: "cancel", requestId, reason: "deadline exceeded" });
    this.#finish(requestId, { state: "timed_out", error: "deadline exceeded" });
  }

  /** In memory at once (the in-flight table decides: a terminal request refuses every later change),
   *  then stored after the request's earlier writes. */
  #update(requestId: string, change: Partial<CapabilityRequestRecord>): boolean {
    const flight = this.#inFlight.get(requestId);
    if (!flight || TERMINAL_STATES.has(flight.record.state)) return false;
    const next = { ...flight.record, ...change };
    flight.record = next;
    flight.write = flight.write.then(() => this.#repo.updateRequest(next)).catch(() => undefined);
    this.#onChange(next.deviceId);
    return true;
  }

  /** The caller learns the outcome once it is stored (a crash after that cannot lose it). */
  #finish(requestId: string, change: Partial<CapabilityRequestRecord>): boolean {
    const flight = this.#inFlight.get(requestId);
    if (!flight || TERMINAL_STATES.has(flight.record.state)) return false;
    let next: CapabilityRequestRecord = { ...flight.record, ...change, finishedAt: this.#clock.now() };
    flight.record = next;
    this.#scheduler.clearTimeout(flight.timer);
    flight.write = flight.write
      .then(() => this.#repo.updateRequest(next))
      .catch((err: unknown) => {
        next = {
          ...next,
          state: "failed",
          error: `the gateway could not record the outcome: ${(err as Error).message}`,
        };
      })
      .then(() => {
        this.#inFlight.delete(requestId);
        this.#onChange(next.deviceId);
        flight.settle(next);
      });
    return true;
  }
}

function sameRegistration(
  a: NodeRecord,
  b: { platform: string; version: string; capabilities: CapabilityRecord[] },
): boolean {
  return (
    a.platform === b.platform &&
    a.version === b.version &&
    a.capabilities.length === b.capabilities.length &&
    a.capabilities.every((c, i) => {
      const d = b.capabilities[i]!;
      return (
        c.name === d.name && c.requiresMediation === d.requiresMediation && c.description === d.description
      );
    })
  );
}
