import type { AuditEntry, AuditRecord } from "../common/audit.js";
import type { DeviceRepository } from "../identity/device-records.js";
import type {
  CapabilityRequestRecord,
  NodeRecord,
  PairingCodeRecord,
  PairingRequestRecord,
  PairingRequestState,
} from "./records.js";

/**
 * The gateway's persistence ports. SQLite (embedded, one gateway) and PostgreSQL (several gateways on
 * one database) implement the same interfaces and pass the same contract tests.
 *
 * Every state change is one atomic operation that commits with its audit entry, and every change two
 * gateways could race on is a compare-and-set in the database (the WHERE clause names the state it
 * expects), never a read-modify-write in memory: with several gateways, memory is not the truth.
 */

export interface AuditQuery {
  kind?: string;
  /** ms since the epoch */
  since?: number;
  deviceId?: string;
  /** Only entries older than this entry (its id): the page after a page that ended with it. */
  before?: string;
  limit: number;
}

export interface AuditLog {
  append(entry: AuditEntry): Promise<AuditRecord>;
  /** Newest first; `kind` matches itself and its sub-kinds (`pairing` matches `pairing.approved`). */
  query(filter: AuditQuery): Promise<AuditRecord[]>;
  /** The latest entries, newest first. */
  recent(limit?: number): Promise<AuditRecord[]>;
  /** Deletes entries older than `olderThan`, in batches; returns how many. */
  prune(olderThan: number): Promise<number>;
  /** Told of every entry this process wrote, after its transaction committed; never throws into a write. */
  onAppend: ((record: AuditRecord) => void) | undefined;
}

/** Builds the audit entry from the row as the operation left it (attempt counts and the like). */
export type AuditOf<T> = AuditEntry | ((row: T) => AuditEntry);

export interface PairingRepository {
  insertCode(code: PairingCodeRecord, audit: AuditEntry): Promise<void>;
  liveCode(codeId: string): Promise<PairingCodeRecord | undefined>;
  codeByRowId(id: string): Promise<PairingCodeRecord | undefined>;
  liveCodes(): Promise<PairingCodeRecord[]>;
  recentCodes(limit?: number): Promise<PairingCodeRecord[]>;
  /** Marks live codes past their expiry as expired, auditing each; returns their code ids. */
  expireCodes(now: number): Promise<string[]>;
  /**
   * Counts one attempt on a live, unexpired code that has attempts left, atomically (two gateways can
   * never both take the last one). Returns the code after the increment, or undefined when none was taken.
   */
  takeAttempt(
    codeRowId: string,
    now: number,
    audit: AuditOf<PairingCodeRecord>,
  ): Promise<PairingCodeRecord | undefined>;
  /** Gives one attempt back (never below 0) on a live code. */
  returnAttempt(codeRowId: string, audit: AuditOf<PairingCodeRecord>): Promise<void>;
  /** live -> exhausted; false when the code was no longer live. */
  exhaustCode(codeRowId: string, now: number, audit: AuditOf<PairingCodeRecord>): Promise<boolean>;
  /**
   * live -> used (the successful attempt given back) and the request created, in one transaction;
   * false (and nothing written) when the code was no longer live.
   */
  consumeCode(
    codeRowId: string,
    now: number,
    request: PairingRequestRecord,
    audit: AuditEntry,
  ): Promise<boolean>;

  request(requestId: string): Promise<PairingRequestRecord | undefined>;
  pendingCount(now: number): Promise<number>;
  recentRequests(limit?: number): Promise<PairingRequestRecord[]>;
  /** The device's requests still waiting for a decision or approved but not collected (an index read). */
  openRequestsOf(deviceId: string): Promise<PairingRequestRecord[]>;
  /**
   * Writes `next` only if the stored request is still in one of `from` (compare-and-set): of two
   * gateways deciding the same request at once, exactly one wins. Publishes the request id on the
   * store's `pairing_request` signal after commit. Returns false when the state had moved on.
   */
  transitionRequest(
    next: PairingRequestRecord,
    from: readonly PairingRequestState[],
    audit: AuditEntry,
  ): Promise<boolean>;
}

export interface NodeRepository {
  saveNode(node: NodeRecord, audit: AuditEntry): Promise<void>;
  count(): Promise<number>;
  node(deviceId: string): Promise<NodeRecord | undefined>;
  nodes(): Promise<NodeRecord[]>;
  createRequest(request: CapabilityRequestRecord): Promise<void>;
  /** Returns false when the request was already terminal (terminal states are immutable). */
  updateRequest(request: CapabilityRequestRecord): Promise<boolean>;
  request(requestId: string): Promise<CapabilityRequestRecord | undefined>;
  /** A node's latest requests, newest first. */
  recentRequests(deviceId: string, limit: number): Promise<CapabilityRequestRecord[]>;
  /** At start: requests this gateway's crash left unfinished (its own, and unowned ones from before
   *  owners were recorded) become failed with `reason`; other gateways' calls are left alone. */
  failUnfinished(now: number, reason: string, gatewayId: string): Promise<number>;
  pruneTerminal(before: number): Promise<number>;
}

/**
 * Which gateway holds each node's session, and which gateways are alive: a gateway beats every few
 * seconds (one write per gateway, never one per node heartbeat) and claims a node's session when it
 * attaches. A gateway whose beat is too old is gone: any live gateway reaps it.
 */
export interface PresenceRepository {
  beat(gatewayId: string, now: number): Promise<void>;
  /** Gateways whose last beat is before `before`. */
  deadGateways(before: number): Promise<string[]>;
  /** The node's session is on this gateway now, replacing any other holder. */
  claim(deviceId: string, gatewayId: string, now: number): Promise<void>;
  /** The node's session on this gateway ended; a newer holder elsewhere is left alone. */
  release(deviceId: string, gatewayId: string): Promise<void>;
  /** Every session held by a gateway that beat at or after `aliveSince`: device id -> gateway id. */
  holders(aliveSince: number): Promise<Map<string, string>>;
  /**
   * A gone gateway: its session claims dropped, its unfinished calls failed with `reason` (each
   * signalled), its row removed; one transaction, harmless when two gateways reap it at once.
   */
  reap(gatewayId: string, now: number, reason: string): Promise<{ sessions: number; failed: number }>;
}

/** A sealed secret as the shared vault stores it: the blob opens only with the cluster's vault key. */
export interface VaultEntry {
  scope: string;
  key: string;
  /** Bytes of the value (not of the blob). */
  size: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * The cluster's vault on the shared database: blob and index in one row, so there is nothing to clean
 * up after a crash (no blob without its index entry, or the other way round).
 */
export interface VaultRepository {
  /** Inserts or replaces; the first creation time is kept. */
  put(entry: VaultEntry, blob: Buffer): Promise<VaultEntry>;
  get(scope: string, key: string): Promise<{ entry: VaultEntry; blob: Buffer } | undefined>;
  /** Metadata only, by scope then key. */
  list(scope?: string): Promise<VaultEntry[]>;
  delete(scope: string, key: string): Promise<boolean>;
}

/** Small key/value facts about the installation (which CA this database belongs to, and the like). */
export interface MetaRepository {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  /** Sets `key` only if it has no value; returns the value that is stored afterwards (first writer wins). */
  setIfAbsent(key: string, value: string): Promise<string>;
}

/** Topics the store publishes after a commit, to this process and (PostgreSQL) every other gateway. */
export type SignalTopic = "pairing_request" | "device" | "node_request";

export interface StoreSignals {
  /** Delivered after commit, possibly more than once; listeners re-read the row, they never trust a payload. */
  subscribe(topic: SignalTopic, listener: (id: string) => void): () => void;
}

export interface GatewayStore {
  readonly kind: "sqlite" | "postgres";
  /** Where the data is, for messages and `doctor` (a path, or a URL with the password removed). */
  readonly location: string;
  readonly meta: MetaRepository;
  readonly audit: AuditLog;
  readonly devices: DeviceRepository;
  readonly pairing: PairingRepository;
  readonly nodes: NodeRepository;
  readonly presence: PresenceRepository;
  /** The shared vault's rows: only on a database several gateways share (PostgreSQL). */
  readonly vault?: VaultRepository;
  readonly signals: StoreSignals;
  close(): Promise<void>;
}
