import type { Database } from "better-sqlite3";
import type { LocalSignals } from "../local-signals.js";
import type { PresenceRepository } from "../ports.js";
import { UNFINISHED_SQL } from "../rows.js";

/** Gateways and node sessions on SQLite (one gateway owns the file, so there is little to race). */
export class SqlitePresenceRepository implements PresenceRepository {
  readonly #db: Database;
  readonly #signals: LocalSignals;
  readonly #beat;
  readonly #dead;
  readonly #claim;
  readonly #release;
  readonly #holders;

  constructor(db: Database, signals: LocalSignals) {
    this.#db = db;
    this.#signals = signals;
    this.#beat = db.prepare(
      "INSERT INTO gateways (gateway_id, seen_at) VALUES (?, ?) ON CONFLICT(gateway_id) DO UPDATE SET seen_at = excluded.seen_at",
    );
    this.#dead = db.prepare("SELECT gateway_id FROM gateways WHERE seen_at < ? ORDER BY gateway_id").pluck();
    this.#claim = db.prepare(
      "INSERT INTO node_sessions (device_id, gateway_id, since) VALUES (?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET gateway_id = excluded.gateway_id, since = excluded.since",
    );
    this.#release = db.prepare("DELETE FROM node_sessions WHERE device_id = ? AND gateway_id = ?");
    this.#holders = db.prepare<[number], { device_id: string; gateway_id: string }>(
      "SELECT s.device_id, s.gateway_id FROM node_sessions s JOIN gateways g USING (gateway_id) WHERE g.seen_at >= ?",
    );
  }

  async beat(gatewayId: string, now: number): Promise<void> {
    this.#beat.run(gatewayId, now);
  }

  async deadGateways(before: number): Promise<string[]> {
    return this.#dead.all(before) as string[];
  }

  async claim(deviceId: string, gatewayId: string, now: number): Promise<void> {
    this.#claim.run(deviceId, gatewayId, now);
  }

  async release(deviceId: string, gatewayId: string): Promise<void> {
    this.#release.run(deviceId, gatewayId);
  }

  async holders(aliveSince: number): Promise<Map<string, string>> {
    return new Map(this.#holders.all(aliveSince).map((r) => [r.device_id, r.gateway_id]));
  }

  async reap(gatewayId: string, now: number, reason: string): Promise<{ sessions: number; failed: number }> {
    const result = this.#db
      .transaction(() => {
        const sessions = this.#db
          .prepare("DELETE FROM node_sessions WHERE gateway_id = ?")
          .run(gatewayId).changes;
        const failed = this.#db
          .prepare(
            `UPDATE capability_requests SET state = 'failed', finished_at = ?, error = ?
             WHERE gateway_id = ? AND state IN ${UNFINISHED_SQL} RETURNING request_id`,
          )
          .pluck()
          .all(now, reason, gatewayId) as string[];
        this.#db.prepare("DELETE FROM gateways WHERE gateway_id = ?").run(gatewayId);
        return { sessions, failed };
      })
      .immediate();
    for (const id of result.failed) this.#signals.publish("node_request", id);
    return { sessions: result.sessions, failed: result.failed.length };
  }
}
