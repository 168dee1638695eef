import type { Clock } from "../common/clock.js";
import type { Random } from "../common/random.js";
import { LocalSignals } from "./local-signals.js";
import type { GatewayStore } from "./ports.js";
import { SqliteAuditLog } from "./sqlite/audit-log.js";
import { type Database, openDatabase } from "./sqlite/database.js";
import { SqliteDeviceRepository } from "./sqlite/device-repository.js";
import { SqliteMetaRepository } from "./sqlite/meta.js";
import { SqliteNodeRepository } from "./sqlite/node-repository.js";
import { SqlitePairingRepository } from "./sqlite/pairing-repository.js";
import { SqlitePresenceRepository } from "./sqlite/presence-repository.js";

export type { GatewayStore } from "./ports.js";

/** The embedded store: one SQLite file that one gateway owns. Its extras serve local tools (backup, CLI). */
export interface SqliteGatewayStore extends GatewayStore {
  readonly kind: "sqlite";
  readonly db: Database;
  readonly meta: SqliteMetaRepository;
  readonly audit: SqliteAuditLog;
  readonly devices: SqliteDeviceRepository;
  readonly pairing: SqlitePairingRepository;
  readonly nodes: SqliteNodeRepository;
  readonly signals: LocalSignals;
}

export function openGatewayStore(path: string, clock: Clock, random: Random): SqliteGatewayStore {
  const db = openDatabase(path);
  const audit = new SqliteAuditLog(db, clock, random);
  const signals = new LocalSignals();
  return {
    kind: "sqlite",
    location: path,
    db,
    meta: new SqliteMetaRepository(db),
    audit,
    devices: new SqliteDeviceRepository(db, audit, signals),
    pairing: new SqlitePairingRepository(db, audit, signals),
    nodes: new SqliteNodeRepository(db, audit),
    presence: new SqlitePresenceRepository(db, signals),
    signals,
    close: async () => {
      db.close();
    },
  };
}
