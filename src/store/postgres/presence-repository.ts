import type { PresenceRepository } from "../ports.js";
import { UNFINISHED_SQL } from "../rows.js";
import type { PgDatabase } from "./database.js";
import { publish } from "./signals.js";

/** Gateways and node sessions on PostgreSQL, shared by every gateway of the cluster. */
export class PgPresenceRepository implements PresenceRepository {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async beat(gatewayId: string, now: number): Promise<void> {
    await this.#db.execute(
      `INSERT INTO gateways (gateway_id, seen_at) VALUES ($1, $2)
       ON CONFLICT (gateway_id) DO UPDATE SET seen_at = excluded.seen_at`,
      [gatewayId, now],
    );
  }

  async deadGateways(before: number): Promise<string[]> {
    const rows = await this.#db.rows<{ gateway_id: string }>(
      "SELECT gateway_id FROM gateways WHERE seen_at < $1 ORDER BY gateway_id",
      [before],
    );
    return rows.map((r) => r.gateway_id);
  }

  async claim(deviceId: string, gatewayId: string, now: number): Promise<void> {
    await this.#db.execute(
      `INSERT INTO node_sessions (device_id, gateway_id, since) VALUES ($1, $2, $3)
       ON CONFLICT (device_id) DO UPDATE SET gateway_id = excluded.gateway_id, since = excluded.since`,
      [deviceId, gatewayId, now],
    );
  }

  async release(deviceId: string, gatewayId: string): Promise<void> {
    await this.#db.execute("DELETE FROM node_sessions WHERE device_id = $1 AND gateway_id = $2", [
      deviceId,
      gatewayId,
    ]);
  }

  async holders(aliveSince: number): Promise<Map<string, string>> {
    const rows = await this.#db.rows<{ device_id: string; gateway_id: string }>(
      `SELECT s.device_id, s.gateway_id FROM node_sessions s JOIN gateways g USING (gateway_id)
       WHERE g.seen_at >= $1`,
      [aliveSince],
    );
    return new Map(rows.map((r) => [r.device_id, r.gateway_id]));
  }

  async reap(gatewayId: string, now: number, reason: string): Promise<{ sessions: number; failed: number }> {
    return this.#db.transaction(async (tx) => {
      const sessions = await tx.execute("DELETE FROM node_sessions WHERE gateway_id = $1", [gatewayId]);
      const failed = await tx.rows<{ request_id: string }>(
        `UPDATE capability_requests SET state = 'failed', finished_at = $1, error = $2
         WHERE gateway_id = $3 AND state IN ${UNFINISHED_SQL} RETURNING request_id`,
        [now, reason, gatewayId],
      );
      for (const row of failed) await publish(tx, "node_request", row.request_id);
      await tx.execute("DELETE FROM gateways WHERE gateway_id = $1", [gatewayId]);
      return { sessions, failed: failed.length };
    });
  }
}
