import type { AuditEntry } from "../../common/audit.js";
import type { NodeRepository } from "../ports.js";
import type { CapabilityRequestRecord, NodeRecord } from "../records.js";
import { type NodeRow, type RequestRow, TERMINAL_SQL, toNode, toRequest, UNFINISHED_SQL } from "../rows.js";
import type { PgAuditLog } from "./audit-log.js";
import type { PgDatabase } from "./database.js";
import { publish } from "./signals.js";

/**
 * Nodes and capability requests on PostgreSQL. Terminal request states are immutable: the update's
 * WHERE clause refuses them, even against a writer on another gateway. Request changes are signalled
 * (`node_request`) so the gateway holding the node, or the caller waiting on another, can re-read.
 */
export class PgNodeRepository implements NodeRepository {
  readonly #db: PgDatabase;
  readonly #audit: PgAuditLog;

  constructor(db: PgDatabase, audit: PgAuditLog) {
    this.#db = db;
    this.#audit = audit;
  }

  async saveNode(node: NodeRecord, audit: AuditEntry): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.execute(
        `INSERT INTO nodes (device_id, platform, version, capabilities, registered_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (device_id) DO UPDATE SET platform = excluded.platform, version = excluded.version,
           capabilities = excluded.capabilities, updated_at = excluded.updated_at`,
        [
          node.deviceId,
          node.platform,
          node.version,
          JSON.stringify(node.capabilities),
          node.registeredAt,
          node.updatedAt,
        ],
      );
      await this.#audit.appendIn(tx, audit);
    });
  }

  async count(): Promise<number> {
    const [row] = await this.#db.rows<{ n: number }>("SELECT count(*) AS n FROM nodes");
    return row?.n ?? 0;
  }

  async node(deviceId: string): Promise<NodeRecord | undefined> {
    const [row] = await this.#db.rows<NodeRow>("SELECT * FROM nodes WHERE device_id = $1", [deviceId]);
    return row && toNode(row);
  }

  async nodes(): Promise<NodeRecord[]> {
    return (await this.#db.rows<NodeRow>("SELECT * FROM nodes ORDER BY registered_at, device_id")).map(
      toNode,
    );
  }

  async createRequest(r: CapabilityRequestRecord): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.execute(
        `INSERT INTO capability_requests (request_id, device_id, capability, input_json, max_payload_bytes, state,
           created_at, deadline_at, gateway_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          r.requestId,
          r.deviceId,
          r.capability,
          r.inputJson,
          r.maxPayloadBytes,
          r.state,
          r.createdAt,
          r.deadlineAt,
          r.gatewayId ?? null,
        ],
      );
      await publish(tx, "node_request", r.requestId);
    });
  }

  async updateRequest(r: CapabilityRequestRecord): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const changed = await tx.execute(
        `UPDATE capability_requests SET state = $2, dispatched_at = $3, finished_at = $4, output_json = $5, error = $6
         WHERE request_id = $1 AND state NOT IN ${TERMINAL_SQL}`,
        [
          r.requestId,
          r.state,
          r.dispatchedAt ?? null,
          r.finishedAt ?? null,
          r.outputJson ?? null,
          r.error ?? null,
        ],
      );
      if (changed === 0) return false;
      await publish(tx, "node_request", r.requestId);
      return true;
    });
  }

  async request(requestId: string): Promise<CapabilityRequestRecord | undefined> {
    const [row] = await this.#db.rows<RequestRow>("SELECT * FROM capability_requests WHERE request_id = $1", [
      requestId,
    ]);
    return row && toRequest(row);
  }

  async recentRequests(deviceId: string, limit: number): Promise<CapabilityRequestRecord[]> {
    const rows = await this.#db.rows<RequestRow>(
      "SELECT * FROM capability_requests WHERE device_id = $1 ORDER BY created_at DESC, request_id DESC LIMIT $2",
      [deviceId, limit],
    );
    return rows.map(toRequest);
  }

  async failUnfinished(now: number, reason: string, gatewayId: string): Promise<number> {
    return this.#db.transaction(async (tx) => {
      const rows = await tx.rows<{ request_id: string }>(
        `UPDATE capability_requests SET state = 'failed', finished_at = $1, error = $2
         WHERE state IN ${UNFINISHED_SQL} AND (gateway_id = $3 OR gateway_id IS NULL) RETURNING request_id`,
        [now, reason, gatewayId],
      );
      for (const row of rows) await publish(tx, "node_request", row.request_id);
      return rows.length;
    });
  }

  async pruneTerminal(before: number): Promise<number> {
    return this.#db.execute(
      `DELETE FROM capability_requests WHERE state IN ${TERMINAL_SQL} AND finished_at < $1`,
      [before],
    );
  }
}
