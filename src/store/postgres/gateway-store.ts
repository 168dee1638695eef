import type { Clock } from "../../common/clock.js";
import type { Random } from "../../common/random.js";
import type { GatewayStore } from "../ports.js";
import { PgAuditLog } from "./audit-log.js";
import { PgDatabase } from "./database.js";
import { PgDeviceRepository } from "./device-repository.js";
import { PgMetaRepository } from "./meta.js";
import { migratePostgres } from "./migrations.js";
import { PgNodeRepository } from "./node-repository.js";
import { PgPairingRepository } from "./pairing-repository.js";
import { PgPresenceRepository } from "./presence-repository.js";
import { PgSignals } from "./signals.js";
import { PgVaultRepository } from "./vault-repository.js";

/**
 * Opens the gateway's store on a PostgreSQL database (`postgresql://user:password@host:port/db`), shared
 * by every gateway of a cluster: migrates the schema (once, whoever starts first) and starts listening
 * for the other gateways' signals before it returns.
 */
export async function openPostgresStore(url: string, clock: Clock, random: Random): Promise<GatewayStore> {
  const db = new PgDatabase(url);
  const signals = new PgSignals(url);
  try {
    await migratePostgres(db);
    try {
      await signals.start();
    } catch (err) {
      throw db.error(err);
    }
  } catch (err) {
    await signals.close();
    await db.close().catch(() => {});
    throw err;
  }
  const audit = new PgAuditLog(db, clock, random);
  let closing: Promise<void> | undefined;
  return {
    kind: "postgres",
    location: db.location,
    meta: new PgMetaRepository(db),
    audit,
    devices: new PgDeviceRepository(db, audit),
    pairing: new PgPairingRepository(db, audit),
    nodes: new PgNodeRepository(db, audit),
    presence: new PgPresenceRepository(db),
    vault: new PgVaultRepository(db),
    signals,
    close() {
      closing ??= (async () => {
        await signals.close();
        await db.close();
      })();
      return closing;
    },
  };
}
