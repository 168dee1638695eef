import type { Database } from "better-sqlite3";
import type { AuditEntry } from "../../common/audit.js";
import type { NodeRepository } from "../ports.js";
import type { CapabilityRequestRecord, NodeRecord } from "../records.js";
import { type NodeRow, type RequestRow, TERMINAL_SQL, toNode, toRequest, UNFINISHED_SQL } from "../rows.js";
import type { SqliteAuditLog } from "./audit-log.js";

export type { CapabilityRecord, CapabilityRequestRecord, NodeRecord, RequestState } from "../records.js";
export { TERMINAL_STATES } from "../records.js";

/** Nodes and capability requests on SQLite. Terminal request states are never overwritten. */
export class SqliteNodeRepository implements NodeRepository {
  readonly #db: Database;
  readonly #audit: SqliteAuditLog;
  readonly #upsertNode;
  readonly #node;
  readonly #nodes;
  readonly #insertRequest;
  readonly #updateRequest;
  readonly #request;
  readonly #recent;
  readonly #failUnfinished;
  readonly #prune;

  constructor(db: Database, audit: SqliteAuditLog) {
    this.#db = db;
    this.#audit = audit;
    this.#upsertNode = db.prepare(`
      INSERT INTO nodes (device_id, platform, version, capabilities, registered_at, updated_at)
      VALUES (@deviceId, @platform, @version, @capabilities, @registeredAt, @updatedAt)
      ON CONFLICT(device_id) DO UPDATE SET platform = excluded.platform, version = excluded.version,
        capabilities = excluded.capabilities, updated_at = excluded.updated_at`);
    this.#node = db.prepare("SELECT * FROM nodes WHERE device_id = ?");
    this.#nodes = db.prepare("SELECT * FROM nodes ORDER BY registered_at");
    this.#insertRequest = db.prepare(`
      INSERT INTO capability_requests (request_id, device_id, capability, input_json, max_payload_bytes, state,
        created_at, deadline_at, gateway_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    // The WHERE clause makes terminal states immutable even against a racing writer.
    this.#updateRequest = db.prepare(`
      UPDATE capability_requests SET state = @state, dispatched_at = @dispatchedAt, finished_at = @finishedAt,
        output_json = @outputJson, error = @error
      WHERE request_id = @requestId AND state NOT IN ${TERMINAL_SQL}`);
    this.#request = db.prepare<[string], RequestRow>(
      "SELECT * FROM capability_requests WHERE request_id = ?",
    );
    this.#recent = db.prepare<[string, number], RequestRow>(
      "SELECT * FROM capability_requests WHERE device_id = ? ORDER BY created_at DESC, request_id DESC LIMIT ?",
    );
    this.#failUnfinished = db.prepare(`
      UPDATE capability_requests SET state = 'failed', finished_at = ?, error = ?
      WHERE state IN ${UNFINISHED_SQL} AND (gateway_id = ? OR gateway_id IS NULL)`);
    this.#prune = db.prepare(
      `DELETE FROM capability_requests WHERE state IN ${TERMINAL_SQL} AND finished_at < ?`,
    );
  }

  async saveNode(node: NodeRecord, audit: AuditEntry): Promise<void> {
    this.#db
      .transaction(() => {
        this.#upsertNode.run({ ...node, capabilities: JSON.stringify(node.capabilities) });
        this.#audit.appendSync(audit);
      })
      .immediate();
  }

  async count(): Promise<number> {
    return this.#db.prepare("SELECT count(*) FROM nodes").pluck().get() as number;
  }

  async node(deviceId: string): Promise<NodeRecord | undefined> {
    const row = this.#node.get(deviceId) as Record<string, unknown> | undefined;
    return row && toNode(row as unknown as NodeRow);
  }

  async nodes(): Promise<NodeRecord[]> {
    return (this.#nodes.all() as Record<string, unknown>[]).map((r) => toNode(r as unknown as NodeRow));
  }

  async createRequest(r: CapabilityRequestRecord): Promise<void> {
    this.#insertRequest.run(
      r.requestId,
      r.deviceId,
      r.capability,
      r.inputJson,
      r.maxPayloadBytes,
      r.state,
      r.createdAt,
      r.deadlineAt,
      r.gatewayId ?? null,
    );
  }

  /** Returns false when the request was already terminal (the update is refused). */
  async updateRequest(r: CapabilityRequestRecord): Promise<boolean> {
    return (
      this.#updateRequest.run({
        requestId: r.requestId,
        state: r.state,
        dispatchedAt: r.dispatchedAt ?? null,
        finishedAt: r.finishedAt ?? null,
        outputJson: r.outputJson ?? null,
        error: r.error ?? null,
      }).changes === 1
    );
  }

  async request(requestId: string): Promise<CapabilityRequestRecord | undefined> {
    const row = this.#request.get(requestId);
    return row && toRequest(row);
  }

  /** A node's latest requests, newest first. */
  async recentRequests(deviceId: string, limit: number): Promise<CapabilityRequestRecord[]> {
    return this.#recent.all(deviceId, limit).map(toRequest);
  }

  /** At start: requests a crash left unfinished become failed ("gateway restarted"). */
  async failUnfinished(now: number, reason: string, gatewayId: string): Promise<number> {
    return this.#failUnfinished.run(now, reason, gatewayId).changes;
  }

  async pruneTerminal(before: number): Promise<number> {
    return this.#prune.run(before).changes;
  }
}
