import type { Clock } from "../common/clock.js";
import type { Random } from "../common/random.js";
import { SqliteAuditLog } from "./audit-log.js";
import { type Database, openDatabase } from "./database.js";
import { SqliteDeviceRepository } from "./device-repository.js";
import { MetaRepository } from "./meta.js";
import { SqliteNodeRepository } from "./node-repository.js";
import { SqlitePairingRepository } from "./pairing-repository.js";

/** The gateway's repositories over one database. */
export interface GatewayStore {
  readonly db: Database;
  readonly meta: MetaRepository;
  readonly audit: SqliteAuditLog;
  readonly devices: SqliteDeviceRepository;
  readonly pairing: SqlitePairingRepository;
  readonly nodes: SqliteNodeRepository;
  close(): void;
}

export function openGatewayStore(path: string, clock: Clock, random: Random): GatewayStore {
  const db = openDatabase(path);
  const audit = new SqliteAuditLog(db, clock, random);
  return {
    db,
    meta: new MetaRepository(db),
    audit,
    devices: new SqliteDeviceRepository(db, audit),
    pairing: new SqlitePairingRepository(db, audit),
    nodes: new SqliteNodeRepository(db, audit),
    close: () => db.close(),
  };
}
