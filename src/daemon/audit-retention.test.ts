import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { SeededRandom } from "../common/random.js";
import { openGatewayStore } from "../store/gateway-store.js";
import { pruneAuditNow } from "./audit-retention.js";

const DAY = 24 * 60 * 60 * 1000;

test("audit retention deletes entries older than the configured days, keeps newer ones; 0 keeps all", async () => {
  const clock = new ManualClock(1_000 * DAY);
  const store = openGatewayStore(":memory:", clock, new SeededRandom("retention"));
  // 12 000 old entries: more than one prune batch.
  for (let i = 0; i < 12_000; i++) store.audit.appendSync({ kind: "old", actor: "system" });
  clock.advance(20 * DAY);
  store.audit.appendSync({ kind: "recent", actor: "system" });
  clock.advance(10 * DAY);

  assert.equal(await pruneAuditNow(store.audit, clock, 0), 0, "0 days keeps every entry");
  assert.equal((await store.audit.query({ limit: 20_000 })).length, 12_001);
  assert.equal(await pruneAuditNow(store.audit, clock, 30), 0, "nothing is 30 days old yet");
  assert.equal(await pruneAuditNow(store.audit, clock, 15), 12_000);
  assert.deepEqual(
    (await store.audit.query({ limit: 10 })).map((e) => e.kind),
    ["recent"],
  );
  store.close();
});

test("audit query pages with a `before` cursor, newest first, without gaps or repeats", async () => {
  const clock = new ManualClock(5_000);
  const store = openGatewayStore(":memory:", clock, new SeededRandom("paging"));
  // Several entries share one millisecond: the cursor must still order them by insertion.
  for (let i = 0; i < 25; i++) {
    store.audit.appendSync({ kind: "pairing.approved", actor: "admin", detail: { i } });
    if (i % 3 === 0) clock.advance(1);
  }
  const seen: number[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await store.audit.query({ kind: "pairing", limit: 7, ...(before ? { before } : {}) });
    seen.push(...page.map((e) => e.detail?.i as number));
    if (page.length < 7) break;
    before = page.at(-1)!.id;
  }
  assert.deepEqual(
    seen,
    Array.from({ length: 25 }, (_, k) => 24 - k),
  );
  assert.deepEqual(
    await store.audit.query({ before: "01ARZ3NDEKTSV4RRFFQ69G5FAV", limit: 5 }),
    [],
    "unknown cursor",
  );
  store.close();
});
