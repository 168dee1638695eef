import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { countAuditRows, seedAuditRows } from "./helpers/audit-rows.js";
import { gatewayFixture } from "./helpers/gateway-fixture.js";

/**
 * `GET /v1/audit` pages through the whole log with the `before` cursor (newest first, every event once,
 * events written in the same millisecond included), filters by kind in the database, and refuses a bad
 * cursor, limit or kind with 400.
 */

const fixture = gatewayFixture("palyra-admin-audit-");
/** Events written straight into the running gateway's database (its start-up writes none). */
const SEEDED = 2500;
type Get = (query: string) => Promise<{ status: number; body: AuditPage & { error?: { code: string } } }>;
let get: Get;
let seeded: Promise<void> | undefined;

interface AuditPage {
  events: { id: string; at: string; kind: string; detail: Record<string, unknown> }[];
  next_before: string | null;
}

/** Seeds the log once, when the first test runs (the fixture's daemon has started by then). */
function ready(): Promise<void> {
  seeded ??= Promise.resolve().then(seed);
  return seeded;
}

function seed(): void {
  const { daemon, gatewayRoot } = fixture;
  const token = readFileSync(join(gatewayRoot, "admin.token"), "utf8").trim();
  get = async (query) => {
    const res = await fetch(new URL(`/v1/audit${query}`, daemon.summary.admin_url), {
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: (await res.json()) as AuditPage & { error?: { code: string } } };
  };
  // Ten events in each millisecond, so pages end in the middle of a run of equal times; a kind of
  // every seventh event is a `pairing` sub-kind, and `pairings.x` must not count as one.
  const start = Date.now() - 3_600_000;
  seedAuditRows(
    join(gatewayRoot, "palyra.db"),
    Array.from({ length: SEEDED }, (_, i) => ({
      at: start + Math.floor(i / 10),
      kind: i % 7 === 0 ? "pairing.code_minted" : i % 7 === 1 ? "pairings.other" : "secret.set",
      actor: "test",
      detail: { seeded: i },
    })),
  );
}

function countRows(where = ""): number {
  return countAuditRows(join(fixture.gatewayRoot, "palyra.db"), where);
}

/** Every page of `query`, following `next_before` until it is null. */
async function allPages(query: string): Promise<{ pages: number; events: AuditPage["events"] }> {
  const events: AuditPage["events"] = [];
  let pages = 0;
  for (let cursor: string | null = ""; cursor !== null; pages++) {
    const { status, body } = await get(`${query}${cursor ? `&before=${cursor}` : ""}`);
    assert.equal(status, 200);
    events.push(...body.events);
    cursor = body.next_before;
    if (cursor !== null) assert.equal(cursor, body.events[body.events.length - 1]?.id);
    assert.ok(pages < 100, "paging ends");
  }
  return { pages, events };
}

test("GET /v1/audit pages through more than 1000 events with before=, every event once, newest first", async () => {
  await ready();
  const total = countRows();
  assert.ok(total >= SEEDED);
  const first = await get("?limit=1000");
  assert.equal(first.status, 200);
  assert.equal(first.body.events.length, 1000);
  assert.equal(first.body.next_before, first.body.events[999]!.id);

  const { pages, events } = await allPages("?limit=300");
  assert.equal(pages, Math.ceil(total / 300) + (total % 300 === 0 ? 1 : 0));
  assert.equal(events.length, total);
  assert.equal(new Set(events.map((e) => e.id)).size, total, "no event twice");
  for (let i = 1; i < events.length; i++) assert.ok(events[i - 1]!.at >= events[i]!.at, "newest first");
  // Events of one millisecond come newest-written first, across page boundaries too.
  const seeded = events.filter((e) => typeof e.detail.seeded === "number").map((e) => e.detail.seeded);
  assert.deepEqual(
    seeded,
    Array.from({ length: SEEDED }, (_, i) => SEEDED - 1 - i),
  );

  // A page that is not full is the last: no cursor.
  const last = await get(`?limit=1000&before=${events[total - 2]!.id}`);
  assert.deepEqual(
    last.body.events.map((e) => e.id),
    [events[total - 1]!.id],
  );
  assert.equal(last.body.next_before, null);
  // A canonical id that is no event's: nothing older to show.
  const unknown = await get("?before=01ARZ3NDEKTSV4RRFFQ69G5FAV");
  assert.equal(unknown.status, 200);
  assert.deepEqual(unknown.body, { events: [], next_before: null });
});

test("GET /v1/audit?kind= filters in the database: the kind and its sub-kinds, paged alike", async () => {
  await ready();
  const expected = countRows("WHERE kind = 'pairing' OR kind LIKE 'pairing.%'");
  assert.ok(expected >= Math.ceil(SEEDED / 7), "every seeded pairing event counts");
  const { events } = await allPages("?kind=pairing&limit=100");
  assert.equal(events.length, expected);
  for (const e of events) assert.match(e.kind, /^pairing\./);
  const exact = await get("?kind=pairings.other&limit=1000");
  assert.equal(exact.body.events.length, countRows("WHERE kind = 'pairings.other'"));
  // A full page of one kind is found even when the newest 1000 events hold fewer of it.
  const page = await get("?kind=pairing.code_minted&limit=200");
  assert.equal(page.body.events.length, 200);
  assert.ok(page.body.next_before);
});

test("GET /v1/audit refuses a bad cursor, limit or kind with 400, and clamps the limit to 1..1000", async () => {
  await ready();
  for (const query of [
    "?before=abc",
    "?before=01arz3ndektsv4rrffq69g5fav", // lower case is not canonical
    "?before=81ARZ3NDEKTSV4RRFFQ69G5FAV", // past the 48-bit time
    "?before=01ARZ3NDEKTSV4RRFFQ69G5FAVX",
    "?before=",
    "?limit=abc",
    "?limit=-5",
    "?limit=1.5",
    "?kind=Pairing",
    "?kind=pairing%25",
    "?kind=a'b",
  ]) {
    const { status, body } = await get(query);
    assert.equal(status, 400, query);
    assert.equal(body.error?.code, "invalid_input", query);
  }
  assert.equal((await get("?limit=0")).body.events.length, 1);
  assert.equal((await get("?limit=5000")).body.events.length, 1000);
  assert.equal((await get("")).body.events.length, 200);
});
