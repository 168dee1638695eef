import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { modeOf } from "../../common/atomic-file.js";
import { ManualClock } from "../../common/clock.js";
import { SeededRandom } from "../../common/random.js";
import { openGatewayStore } from "../gateway-store.js";
import { openDatabase } from "./database.js";
import { currentSchemaVersion, MIGRATIONS, migrate } from "./migrations.js";

const root = mkdtempSync(join(tmpdir(), "palyra-db-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("openDatabase: WAL, synchronous=FULL, migrated, 0600 in a 0700 directory", () => {
  const path = join(root, "state", "palyra.db");
  const db = openDatabase(path);
  assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
  assert.equal(db.pragma("synchronous", { simple: true }), 2);
  assert.equal(currentSchemaVersion(db), MIGRATIONS.at(-1)!.version);
  db.prepare("INSERT INTO meta (key, value) VALUES ('k', 'v')").run();
  db.close();
  assert.equal(modeOf(path), 0o600);
  assert.equal(modeOf(join(root, "state")), 0o700);
  const again = openDatabase(path);
  assert.equal(again.prepare("SELECT value FROM meta WHERE key = 'k'").pluck().get(), "v");
  again.close();
});

test("a database from a newer Palyra is refused with a clear error", () => {
  const path = join(root, "newer.db");
  const db = openDatabase(path);
  db.pragma("user_version = 999");
  db.close();
  assert.throws(() => openDatabase(path), { code: "schema_too_new", message: /upgrade Palyra/ });
});

test("a failing migration rolls back whole and names itself", () => {
  const db = openDatabase(":memory:");
  const bad = [
    ...MIGRATIONS,
    { version: 99, name: "broken", sql: "CREATE TABLE ok_table (x); SELEC nonsense;" },
  ];
  assert.throws(() => migrate(db, bad), { code: "migration_failed", message: /migration 99 \(broken\)/ });
  assert.equal(currentSchemaVersion(db), MIGRATIONS.at(-1)!.version);
  assert.equal(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'ok_table'").pluck().get(), 0);
  db.close();
});

test("audit entries are stored and read back newest first", async () => {
  const clock = new ManualClock(1_000);
  const store = openGatewayStore(":memory:", clock, new SeededRandom("audit"));
  await store.audit.append({ kind: "a", actor: "system" });
  clock.advance(1);
  await store.audit.append({
    kind: "b",
    actor: "admin",
    deviceId: "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    detail: { n: 1 },
  });
  const recent = await store.audit.recent();
  assert.deepEqual(
    recent.map((r) => [r.kind, r.at, r.deviceId ?? null, r.detail]),
    [
      ["b", 1001, "01ARZ3NDEKTSV4RRFFQ69G5FAV", { n: 1 }],
      ["a", 1000, null, {}],
    ],
  );
  store.close();
});
