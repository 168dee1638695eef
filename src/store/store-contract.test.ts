import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { type PgServer, startPostgres } from "../../test/helpers/postgres-server.js";
import type { AuditRecord } from "../common/audit.js";
import { ManualClock } from "../common/clock.js";
import { newId } from "../common/ids.js";
import { type Random, SeededRandom } from "../common/random.js";
import type { PairedDevice } from "../identity/device-records.js";
import { openGatewayStore } from "./gateway-store.js";
import type { GatewayStore, SignalTopic } from "./ports.js";
import { openPostgresStore } from "./postgres/gateway-store.js";
import type { CapabilityRequestRecord, PairingCodeRecord, PairingRequestRecord } from "./records.js";

/**
 * One set of behaviour tests for every GatewayStore: the embedded SQLite store and the PostgreSQL one
 * (a real server started for this file, a fresh database per test). Then the races only several
 * gateways on one database can run: two store instances, two pools, as two gateways would have.
 */

interface Ctx {
  store: GatewayStore;
  clock: ManualClock;
  random: Random;
  id(): string;
}

type Open = (clock: ManualClock, random: Random) => Promise<GatewayStore>;

const SIGNAL_TIMEOUT_MS = 5_000;
const MINUTE = 60_000;

function contract(open: () => Open): void {
  const it = (name: string, body: (ctx: Ctx) => Promise<void>) =>
    test(name, async () => {
      const clock = new ManualClock();
      const random = new SeededRandom(name);
      const store = await open()(clock, random);
      try {
        await body({ store, clock, random, id: () => newId(clock, random) });
      } finally {
        await store.close();
      }
    });

  it("audit: append and recent, newest first (same millisecond: last written first)", async ({
    store,
    clock,
  }) => {
    const a = await store.audit.append({ kind: "x.one", actor: "admin", detail: { n: 1 } });
    const b = await store.audit.append({ kind: "x.two", actor: "system", deviceId: "dev-1" });
    clock.advance(5);
    const c = await store.audit.append({ kind: "x.three", actor: "admin" });
    assert.equal(a.at, b.at);
    assert.equal(c.at, a.at + 5);
    const recent = await store.audit.recent();
    assert.deepEqual(
      recent.map((r) => r.id),
      [c.id, b.id, a.id],
    );
    assert.deepEqual(recent[2]?.detail, { n: 1 });
    assert.equal(recent[1]?.deviceId, "dev-1");
    assert.equal(recent[0]?.deviceId, undefined);
    assert.equal((await store.audit.recent(1)).length, 1);
  });

  it("audit: kind matches itself and its sub-kinds, LIKE characters literal", async ({ store, clock }) => {
    for (const kind of ["pairing", "pairing.approved", "pairingx", "pair_ng.x", "a%b.c", "aXb.c"]) {
      await store.audit.append({ kind, actor: "admin", deviceId: kind === "pairingx" ? "d1" : "d2" });
      clock.advance(1);
    }
    const kinds = async (kind: string) => (await store.audit.query({ kind, limit: 10 })).map((r) => r.kind);
    assert.deepEqual(await kinds("pairing"), ["pairing.approved", "pairing"]);
    assert.deepEqual(await kinds("pair_ng"), ["pair_ng.x"]);
    assert.deepEqual(await kinds("a%b"), ["a%b.c"]);
    assert.deepEqual(
      (await store.audit.query({ deviceId: "d1", limit: 10 })).map((r) => r.kind),
      ["pairingx"],
    );
    const since = await store.audit.query({ since: clock.now() - 2, limit: 10 });
    assert.deepEqual(
      since.map((r) => r.kind),
      ["aXb.c", "a%b.c"],
    );
  });

  it("audit: `before` pages through everything exactly once", async ({ store, clock }) => {
    for (let i = 0; i < 7; i++) {
      await store.audit.append({ kind: "page", actor: "admin", detail: { i } });
      if (i % 3 === 0) clock.advance(1);
    }
    const all = await store.audit.query({ kind: "page", limit: 100 });
    assert.equal(all.length, 7);
    const paged: AuditRecord[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await store.audit.query({ kind: "page", limit: 3, ...(before ? { before } : {}) });
      paged.push(...page);
      if (page.length < 3) break;
      before = page.at(-1)?.id;
    }
    assert.deepEqual(
      paged.map((r) => r.id),
      all.map((r) => r.id),
    );
    assert.deepEqual(await store.audit.query({ before: "01ARZ3NDEKTSV4RRFFQ69G5FAV", limit: 10 }), []);
  });

  it("audit: prune deletes entries older than the cut", async ({ store, clock }) => {
    const t0 = clock.now();
    for (const step of [0, 10, 10]) {
      clock.advance(step);
      await store.audit.append({ kind: "old", actor: "system" });
    }
    assert.equal(await store.audit.prune(t0 + 15), 2);
    assert.equal(await store.audit.prune(t0 + 15), 0);
    assert.deepEqual(
      (await store.audit.recent()).map((r) => r.at),
      [t0 + 20],
    );
  });

  it("audit: onAppend hears of a committed entry", async ({ store, clock, id }) => {
    const heard = new Promise<AuditRecord>((resolve) => {
      store.audit.onAppend = resolve;
    });
    await store.pairing.insertCode(code(clock, id()), { kind: "pairing.code_created", actor: "admin" });
    const record = await withTimeout(heard, "onAppend");
    assert.equal(record.kind, "pairing.code_created");
  });

  it("meta: get, set, setIfAbsent (first writer wins)", async ({ store }) => {
    assert.equal(await store.meta.get("ca"), undefined);
    assert.equal(await store.meta.setIfAbsent("ca", "first"), "first");
    assert.equal(await store.meta.setIfAbsent("ca", "second"), "first");
    await store.meta.set("ca", "third");
    assert.equal(await store.meta.get("ca"), "third");
  });

  it("pairing codes: insert, live lookups, recent, expiry", async ({ store, clock, id }) => {
    const a = code(clock, id(), { codeId: "AAAA", expiresAt: clock.now() + 2 * MINUTE });
    clock.advance(1);
    const b = code(clock, id(), { codeId: "BBBB", expiresAt: clock.now() + 10 * MINUTE });
    await store.pairing.insertCode(a, { kind: "pairing.code_created", actor: "admin" });
    await store.pairing.insertCode(b, { kind: "pairing.code_created", actor: "admin" });
    assert.deepEqual(await store.pairing.liveCode("AAAA"), a);
    assert.deepEqual(await store.pairing.codeByRowId(b.id), b);
    assert.deepEqual(
      (await store.pairing.liveCodes()).map((c) => c.codeId),
      ["AAAA", "BBBB"],
    );
    assert.deepEqual(
      (await store.pairing.recentCodes()).map((c) => c.codeId),
      ["BBBB", "AAAA"],
    );
    clock.advance(5 * MINUTE);
    assert.deepEqual(await store.pairing.expireCodes(clock.now()), ["AAAA"]);
    assert.deepEqual(await store.pairing.expireCodes(clock.now()), []);
    assert.equal(await store.pairing.liveCode("AAAA"), undefined);
    const expired = await store.pairing.codeByRowId(a.id);
    assert.equal(expired?.state, "expired");
    assert.equal(expired?.endedAt, clock.now());
    assert.equal((await store.audit.query({ kind: "pairing.code_expired", limit: 10 })).length, 1);
    assert.equal((await store.audit.query({ kind: "pairing.code_created", limit: 10 })).length, 2);
  });

  it("pairing codes: takeAttempt up to the maximum, returnAttempt, exhaustCode", async ({
    store,
    clock,
    id,
  }) => {
    const c = code(clock, id(), { maxAttempts: 3 });
    await store.pairing.insertCode(c, { kind: "pairing.code_created", actor: "admin" });
    const audit = (row: PairingCodeRecord) => ({
      kind: "pairing.attempt",
      actor: "system",
      detail: { attempts: row.failedAttempts },
    });
    for (const n of [1, 2, 3])
      assert.equal((await store.pairing.takeAttempt(c.id, clock.now(), audit))?.failedAttempts, n);
    assert.equal(await store.pairing.takeAttempt(c.id, clock.now(), audit), undefined);
    const attempts = await store.audit.query({ kind: "pairing.attempt", limit: 10 });
    assert.deepEqual(
      attempts.map((r) => r.detail?.attempts),
      [3, 2, 1],
    );
    await store.pairing.returnAttempt(c.id, { kind: "pairing.attempt_returned", actor: "system" });
    assert.equal((await store.pairing.codeByRowId(c.id))?.failedAttempts, 2);
    assert.ok(
      await store.pairing.exhaustCode(c.id, clock.now(), { kind: "pairing.code_exhausted", actor: "system" }),
    );
    assert.equal(await store.pairing.exhaustCode(c.id, clock.now(), { kind: "x", actor: "system" }), false);
    const exhausted = await store.pairing.codeByRowId(c.id);
    assert.equal(exhausted?.state, "exhausted");
    assert.equal(await store.pairing.takeAttempt(c.id, clock.now(), audit), undefined);
    // Never below zero, and only on a live code.
    const d = code(clock, id(), { codeId: "DDDD" });
    await store.pairing.insertCode(d, { kind: "pairing.code_created", actor: "admin" });
    await store.pairing.returnAttempt(d.id, { kind: "pairing.attempt_returned", actor: "system" });
    assert.equal((await store.pairing.codeByRowId(d.id))?.failedAttempts, 0);
    // An expired (by time) code gives no attempt even before expireCodes ran.
    clock.set(d.expiresAt);
    assert.equal(await store.pairing.takeAttempt(d.id, clock.now(), audit), undefined);
  });

  it("pairing: consumeCode uses the code and creates the request once", async ({ store, clock, id }) => {
    const c = code(clock, id());
    await store.pairing.insertCode(c, { kind: "pairing.code_created", actor: "admin" });
    await store.pairing.takeAttempt(c.id, clock.now(), { kind: "pairing.attempt", actor: "system" });
    const r = request(clock, id(), c.id);
    assert.ok(
      await store.pairing.consumeCode(c.id, clock.now(), r, { kind: "pairing.requested", actor: "system" }),
    );
    const used = await store.pairing.codeByRowId(c.id);
    assert.equal(used?.state, "used");
    assert.equal(used?.failedAttempts, 0);
    assert.equal(used?.endedAt, clock.now());
    assert.deepEqual(await store.pairing.request(r.requestId), r);
    const again = request(clock, id(), c.id);
    assert.equal(
      await store.pairing.consumeCode(c.id, clock.now(), again, { kind: "pairing.requested", actor: "x" }),
      false,
    );
    assert.equal(await store.pairing.request(again.requestId), undefined);
    assert.equal((await store.audit.query({ kind: "pairing.requested", limit: 10 })).length, 1);
  });

  it("pairing requests: transitionRequest is a compare-and-set", async ({ store, clock, id }) => {
    const r = await pendingRequest(store, clock, id);
    assert.equal(await store.pairing.pendingCount(clock.now()), 1);
    assert.equal(await store.pairing.pendingCount(r.expiresAt), 0);
    const approved = approve(r, clock);
    const audit = { kind: "pairing.approved", actor: "admin" };
    assert.ok(await store.pairing.transitionRequest(approved, ["pending_approval"], audit));
    assert.equal(await store.pairing.transitionRequest(approved, ["pending_approval"], audit), false);
    assert.deepEqual(await store.pairing.request(r.requestId), approved);
    assert.equal((await store.audit.query({ kind: "pairing.approved", limit: 10 })).length, 1);
    const completed: PairingRequestRecord = { ...approved, state: "completed" };
    assert.ok(
      await store.pairing.transitionRequest(completed, ["approved"], {
        kind: "pairing.completed",
        actor: "x",
      }),
    );
    assert.equal(await store.pairing.pendingCount(clock.now()), 0);
    clock.advance(1);
    const second = await pendingRequest(store, clock, id);
    assert.deepEqual(
      (await store.pairing.recentRequests()).map((x) => x.requestId),
      [second.requestId, r.requestId],
    );
  });

  it("pairing requests: openRequestsOf lists a device's pending and approved requests only", async ({
    store,
    clock,
    id,
  }) => {
    const pending = await pendingRequest(store, clock, id);
    const other = await pendingRequest(store, clock, id);
    const approved = await pendingRequest(store, clock, id);
    const closed = await pendingRequest(store, clock, id);
    // Three of them for one device (a transition writes the whole record), in three states.
    const sameDevice = (r: PairingRequestRecord) => ({ ...r, deviceId: "dev-open" });
    const audit = { kind: "pairing.approved", actor: "admin" };
    assert.ok(
      await store.pairing.transitionRequest(sameDevice(pending), ["pending_approval"], {
        kind: "pairing.requested",
        actor: "system",
      }),
    );
    assert.ok(
      await store.pairing.transitionRequest(
        { ...approve(sameDevice(approved), clock) },
        ["pending_approval"],
        audit,
      ),
    );
    assert.ok(
      await store.pairing.transitionRequest(
        { ...sameDevice(closed), state: "rejected" },
        ["pending_approval"],
        {
          kind: "pairing.rejected",
          actor: "admin",
        },
      ),
    );
    const open = await store.pairing.openRequestsOf("dev-open");
    assert.deepEqual(open.map((r) => r.requestId).sort(), [pending.requestId, approved.requestId].sort());
    assert.deepEqual(
      (await store.pairing.openRequestsOf(other.deviceId)).map((r) => r.requestId),
      [other.requestId],
    );
    assert.deepEqual(await store.pairing.openRequestsOf("dev-nobody"), []);
  });

  it("devices: save, lookups by certificate, revoked certificates, prune, remove", async ({
    store,
    clock,
  }) => {
    const d = device(clock, "dev-a", "fp-a1");
    assert.ok(await store.devices.save(d, [], { kind: "device.paired", actor: "admin" }));
    assert.deepEqual(await store.devices.get("dev-a"), d);
    const rotated: PairedDevice = {
      ...d,
      current: { fingerprint: "fp-a2", expiresAt: clock.now() + 20 * MINUTE },
      previous: { ...d.current, acceptedUntil: clock.now() + MINUTE },
      updatedAt: clock.now() + 1,
    };
    assert.ok(await store.devices.save(rotated, [], { kind: "device.rotated", actor: "admin" }));
    assert.equal((await store.devices.findByCertificate("fp-a1"))?.deviceId, "dev-a");
    assert.deepEqual(await store.devices.findByCertificate("fp-a2"), rotated);
    assert.equal(await store.devices.findByCertificate("fp-zz"), undefined);
    const revokedAt = clock.now() + 2;
    const revoked: PairedDevice = { ...rotated, revokedAt, revokedReason: "lost", updatedAt: revokedAt };
    const certs = [
      {
        fingerprint: "fp-a1",
        deviceId: "dev-a",
        revokedAt,
        expiresAt: clock.now() + 10 * MINUTE,
        reason: "lost",
      },
      {
        fingerprint: "fp-a2",
        deviceId: "dev-a",
        revokedAt,
        expiresAt: clock.now() + 20 * MINUTE,
        reason: "lost",
      },
    ];
    assert.ok(await store.devices.save(revoked, certs, { kind: "device.revoked", actor: "admin" }));
    assert.ok(
      await store.devices.save(device(clock, "dev-b", "fp-b1"), [], {
        kind: "device.paired",
        actor: "admin",
      }),
    );
    assert.deepEqual(await store.devices.counts(), { active: 1, revoked: 1 });
    assert.deepEqual(
      (await store.devices.list()).map((x) => x.deviceId),
      ["dev-a", "dev-b"],
    );
    assert.deepEqual(await store.devices.findRevokedCertificate("fp-a2"), certs[1]);
    assert.equal(await store.devices.findRevokedCertificate("fp-b1"), undefined);
    assert.equal((await store.devices.listRevokedCertificates()).length, 2);
    assert.equal(await store.devices.pruneRevokedCertificates(clock.now() + 10 * MINUTE), 1);
    assert.deepEqual(
      (await store.devices.listRevokedCertificates()).map((c) => c.fingerprint),
      ["fp-a2"],
    );
    assert.ok(await store.devices.remove("dev-b", { kind: "device.removed", actor: "admin" }));
    assert.equal(await store.devices.remove("dev-b", { kind: "device.removed", actor: "admin" }), false);
    assert.equal(await store.devices.get("dev-b"), undefined);
    assert.equal((await store.audit.query({ kind: "device", limit: 20 })).length, 5);
  });

  it("devices: save with `expected` is a compare-and-set", async ({ store, clock }) => {
    const d = device(clock, "dev-c", "fp-c1");
    const audit = { kind: "device.cas", actor: "admin" };
    assert.ok(await store.devices.save(d, [], audit, null));
    assert.equal(await store.devices.save({ ...d, deviceName: "other" }, [], audit, null), false);
    const next = { ...d, deviceName: "renamed", updatedAt: d.updatedAt + 1 };
    assert.ok(await store.devices.save(next, [], audit, d.updatedAt));
    const stale = { ...d, deviceName: "stale", updatedAt: d.updatedAt + 2 };
    assert.equal(await store.devices.save(stale, [], audit, d.updatedAt), false);
    assert.equal(await store.devices.save({ ...stale, deviceId: "dev-none" }, [], audit, d.updatedAt), false);
    assert.equal((await store.devices.get("dev-c"))?.deviceName, "renamed");
    assert.equal((await store.audit.query({ kind: "device.cas", limit: 10 })).length, 2);
  });

  it("roles: a device's role and a request's granted role round-trip; a role this version does not know grants nothing", async ({
    store,
    clock,
    id,
  }) => {
    const d: PairedDevice = { ...device(clock, "dev-r", "fp-r1"), role: "operator" };
    assert.ok(await store.devices.save(d, [], { kind: "device.paired", actor: "admin" }));
    assert.equal((await store.devices.get("dev-r"))?.role, "operator");
    assert.equal((await store.devices.findByCertificate("fp-r1"))?.role, "operator");
    const { role: _dropped, ...none } = d;
    const next = { ...none, updatedAt: d.updatedAt + 1 };
    assert.ok(
      await store.devices.save(next, [], { kind: "device.role_changed", actor: "admin" }, d.updatedAt),
    );
    assert.equal((await store.devices.get("dev-r"))?.role, undefined);
    const later = { ...next, role: "superuser", updatedAt: next.updatedAt + 1 } as unknown as PairedDevice;
    assert.ok(
      await store.devices.save(later, [], { kind: "device.role_changed", actor: "admin" }, next.updatedAt),
    );
    assert.equal((await store.devices.get("dev-r"))?.role, undefined);

    const r = await pendingRequest(store, clock, id);
    const approved = { ...approve(r, clock), grantedRole: "viewer" };
    assert.ok(
      await store.pairing.transitionRequest(approved, ["pending_approval"], {
        kind: "pairing.approved",
        actor: "admin",
      }),
    );
    assert.equal((await store.pairing.request(r.requestId))?.grantedRole, "viewer");
  });

  it("nodes: saveNode upserts (registeredAt kept), count, node, nodes", async ({ store, clock }) => {
    const node = (deviceId: string, version: string) => ({
      deviceId,
      platform: "linux",
      version,
      capabilities: [{ name: "echo", requiresMediation: false, description: "echo" }],
      registeredAt: clock.now(),
      updatedAt: clock.now(),
    });
    await store.nodes.saveNode(node("n1", "1.0"), { kind: "node.registered", actor: "device:n1" });
    clock.advance(10);
    await store.nodes.saveNode(node("n2", "1.0"), { kind: "node.registered", actor: "device:n2" });
    await store.nodes.saveNode(node("n1", "1.1"), { kind: "node.registered", actor: "device:n1" });
    assert.equal(await store.nodes.count(), 2);
    const n1 = await store.nodes.node("n1");
    assert.equal(n1?.version, "1.1");
    assert.equal(n1?.registeredAt, clock.now() - 10);
    assert.equal(n1?.updatedAt, clock.now());
    assert.deepEqual(n1?.capabilities, node("n1", "1.1").capabilities);
    assert.deepEqual(
      (await store.nodes.nodes()).map((n) => n.deviceId),
      ["n1", "n2"],
    );
    assert.equal(await store.nodes.node("n3"), undefined);
    assert.equal((await store.audit.query({ kind: "node.registered", limit: 10 })).length, 3);
  });

  it("capability requests: terminal immutable, failUnfinished, pruneTerminal, recent", async ({
    store,
    clock,
    id,
  }) => {
    const make = (state: CapabilityRequestRecord["state"] = "queued"): CapabilityRequestRecord => {
      clock.advance(1);
      return capabilityRequest(clock, id(), state);
    };
    const a = make();
    const b = { ...make(), gatewayId: "gw-a" };
    const c = make();
    // Held by another gateway: a restart of gw-a must not fail it.
    const elsewhere = { ...make(), deviceId: "node-2", gatewayId: "gw-b" };
    for (const r of [a, b, c, elsewhere]) await store.nodes.createRequest(r);
    assert.deepEqual(await store.nodes.request(a.requestId), a);
    const done = {
      ...a,
      state: "succeeded" as const,
      dispatchedAt: clock.now(),
      finishedAt: clock.now(),
      outputJson: "{}",
    };
    assert.ok(await store.nodes.updateRequest(done));
    assert.equal(await store.nodes.updateRequest({ ...done, state: "failed", error: "late" }), false);
    assert.deepEqual(await store.nodes.request(a.requestId), done);
    assert.ok(await store.nodes.updateRequest({ ...b, state: "dispatched", dispatchedAt: clock.now() }));
    clock.advance(100);
    assert.equal(await store.nodes.failUnfinished(clock.now(), "gateway restarted", "gw-a"), 2);
    assert.equal((await store.nodes.request(elsewhere.requestId))?.state, "queued");
    assert.equal((await store.nodes.request(b.requestId))?.gatewayId, "gw-a");
    const failed = await store.nodes.request(b.requestId);
    assert.equal(failed?.state, "failed");
    assert.equal(failed?.error, "gateway restarted");
    assert.equal(failed?.finishedAt, clock.now());
    assert.deepEqual(
      (await store.nodes.recentRequests("node-1", 2)).map((r) => r.requestId),
      [c.requestId, b.requestId],
    );
    assert.equal(await store.nodes.pruneTerminal(clock.now()), 1);
    assert.equal(await store.nodes.request(a.requestId), undefined);
    assert.equal(await store.nodes.pruneTerminal(clock.now() + 1), 2);
    assert.equal(await store.nodes.failUnfinished(clock.now(), "gateway restarted", "gw-b"), 1);
  });

  it("presence: beats, claims, holders of live gateways, reaping a gone gateway", async ({
    store,
    clock,
    id,
  }) => {
    const t0 = clock.now();
    await store.presence.beat("gw-a", t0);
    await store.presence.beat("gw-b", t0);
    await store.presence.claim("node-1", "gw-a", t0);
    await store.presence.claim("node-2", "gw-b", t0);
    await store.presence.claim("node-3", "gw-a", t0);
    // node-3 moves to gw-b; gw-a's late release of it leaves gw-b's claim alone.
    await store.presence.claim("node-3", "gw-b", t0 + 1);
    await store.presence.release("node-3", "gw-a");
    assert.deepEqual([...(await store.presence.holders(t0))].sort(), [
      ["node-1", "gw-a"],
      ["node-2", "gw-b"],
      ["node-3", "gw-b"],
    ]);
    clock.advance(20_000);
    await store.presence.beat("gw-b", clock.now());
    assert.deepEqual(await store.presence.deadGateways(clock.now() - 10_000), ["gw-a"]);
    assert.deepEqual(
      [...(await store.presence.holders(clock.now() - 10_000))].sort(),
      [
        ["node-2", "gw-b"],
        ["node-3", "gw-b"],
      ],
      "a silent gateway's sessions do not count",
    );
    const onA = { ...capabilityRequest(clock, id(), "dispatched"), gatewayId: "gw-a" };
    const onB = { ...capabilityRequest(clock, id(), "queued"), gatewayId: "gw-b" };
    await store.nodes.createRequest(onA);
    await store.nodes.createRequest(onB);
    assert.deepEqual(await store.presence.reap("gw-a", clock.now(), "node_disconnected: gone"), {
      sessions: 1,
      failed: 1,
    });
    assert.equal((await store.nodes.request(onA.requestId))?.error, "node_disconnected: gone");
    assert.equal((await store.nodes.request(onB.requestId))?.state, "queued");
    assert.deepEqual(await store.presence.deadGateways(clock.now()), [], "gw-a is gone, gw-b beat now");
    assert.deepEqual(await store.presence.reap("gw-a", clock.now(), "again"), { sessions: 0, failed: 0 });
  });

  it("signals: a committed change is signalled; a failed compare-and-set is not", async ({
    store,
    clock,
    id,
  }) => {
    const r1 = await pendingRequest(store, clock, id);
    const r2 = await pendingRequest(store, clock, id);
    const log = recordSignals(store);
    // Fence: everything the setup published arrives before this device signal, then the log restarts.
    await store.devices.save(device(clock, "fence", "fp-fence"), [], {
      kind: "device.paired",
      actor: "admin",
    });
    await log.waitFor("device:fence");
    log.entries.length = 0;
    const audit = { kind: "pairing.approved", actor: "admin" };
    assert.equal(await store.pairing.transitionRequest(approve(r1, clock), ["approved"], audit), false);
    assert.equal(await store.devices.save(device(clock, "fence", "fp-x"), [], audit, null), false);
    assert.ok(await store.pairing.transitionRequest(approve(r2, clock), ["pending_approval"], audit));
    await log.waitFor(`pairing_request:${r2.requestId}`);
    assert.deepEqual(log.entries, [`pairing_request:${r2.requestId}`]);
    log.stop();
  });
}

// --- the two stores ---

describe("SQLite store", () => {
  contract(() => async (clock, random) => openGatewayStore(":memory:", clock, random));
});

describe("PostgreSQL store", () => {
  let server: PgServer;
  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    await server?.stop();
  });
  contract(() => async (clock, random) => openPostgresStore(await server.createDatabase(), clock, random));

  /** Two gateways on one fresh database: two store instances, two pools, two listeners. */
  const two = (
    name: string,
    body: (a: GatewayStore, b: GatewayStore, clock: ManualClock, url: string) => Promise<void>,
  ) =>
    test(name, async () => {
      const url = await server.createDatabase();
      const clock = new ManualClock();
      const a = await openPostgresStore(url, clock, new SeededRandom(`${name}/a`));
      const b = await openPostgresStore(url, clock, new SeededRandom(`${name}/b`));
      try {
        await body(a, b, clock, url);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

  two("signals reach the other gateway; a failed compare-and-set reaches nobody", async (a, b, clock) => {
    const random = new SeededRandom("ids");
    const id = () => newId(clock, random);
    const r1 = await pendingRequest(a, clock, id);
    const r2 = await pendingRequest(a, clock, id);
    const log = recordSignals(b);
    await a.devices.save(device(clock, "fence", "fp-fence"), [], { kind: "device.paired", actor: "admin" });
    await log.waitFor("device:fence");
    log.entries.length = 0;
    const audit = { kind: "pairing.approved", actor: "admin" };
    assert.ok(await a.pairing.transitionRequest(approve(r1, clock), ["pending_approval"], audit));
    assert.equal(await a.pairing.transitionRequest(approve(r1, clock), ["pending_approval"], audit), false);
    assert.ok(await a.devices.save(device(clock, "d2", "fp-d2"), [], audit));
    await log.waitFor("device:d2");
    assert.deepEqual(log.entries, [`pairing_request:${r1.requestId}`, "device:d2"]);
    assert.equal((await b.pairing.request(r1.requestId))?.state, "approved");
    assert.equal((await b.pairing.request(r2.requestId))?.state, "pending_approval");
    log.stop();
  });

  two("the signal listener comes back after its connection is cut", async (a, b, clock, url) => {
    const log = recordSignals(b);
    const cut = await adminRows<{ pid: number }>(
      url,
      `SELECT pg_terminate_backend(pid) AS pid FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'`,
    );
    assert.equal(cut.length, 2, "both gateways' listeners cut");
    // Signals sent while b reconnects are lost (listeners re-check), so keep publishing until one lands.
    let delivered = false;
    for (let i = 0; i < 50 && !delivered; i++) {
      await a.devices.save(device(clock, `d${i}`, `fp-${i}`), [], { kind: "device.paired", actor: "admin" });
      delivered = await log.waitFor(`device:d${i}`, 200).then(
        () => true,
        () => false,
      );
    }
    assert.ok(delivered, "no signal after the listener's connection was cut");
    log.stop();
  });

  two("two gateways taking 20 attempts at once on a code with 5: exactly 5 succeed", async (a, b, clock) => {
    const random = new SeededRandom("ids");
    const c = code(clock, newId(clock, random), { maxAttempts: 5 });
    await a.pairing.insertCode(c, { kind: "pairing.code_created", actor: "admin" });
    const audit = (row: PairingCodeRecord) => ({
      kind: "pairing.attempt",
      actor: "x",
      detail: { n: row.failedAttempts },
    });
    const taken = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).pairing.takeAttempt(c.id, clock.now(), audit)),
    );
    const won = taken.filter((t) => t !== undefined);
    assert.equal(won.length, 5);
    assert.deepEqual(won.map((t) => t.failedAttempts).sort(), [1, 2, 3, 4, 5]);
    assert.equal((await b.pairing.codeByRowId(c.id))?.failedAttempts, 5);
    assert.equal((await a.audit.query({ kind: "pairing.attempt", limit: 50 })).length, 5);
  });

  two("two gateways deciding the same request at once: one wins, 20 rounds of 20", async (a, b, clock) => {
    const random = new SeededRandom("ids");
    const id = () => newId(clock, random);
    for (let round = 0; round < 20; round++) {
      const r = await pendingRequest(a, clock, id);
      const next = approve(r, clock);
      const audit = { kind: "pairing.approved", actor: "admin" };
      const results = await Promise.all([
        a.pairing.transitionRequest(next, ["pending_approval"], audit),
        b.pairing.transitionRequest({ ...next, decidedBy: "other" }, ["pending_approval"], audit),
      ]);
      assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
    }
    assert.equal((await a.audit.query({ kind: "pairing.approved", limit: 50 })).length, 20);
  });

  test("two gateways migrating an empty database at the same moment both start", async () => {
    const url = await server.createDatabase();
    const clock = new ManualClock();
    const stores = await Promise.all([
      openPostgresStore(url, clock, new SeededRandom("a")),
      openPostgresStore(url, clock, new SeededRandom("b")),
    ]);
    try {
      await stores[0].meta.set("k", "v");
      assert.equal(await stores[1].meta.get("k"), "v");
      const versions = await adminRows<{ version: number }>(
        url,
        "SELECT version FROM schema_migrations ORDER BY 1",
      );
      assert.deepEqual(
        versions.map((v) => v.version),
        [1, 2, 3, 4, 5, 6, 7, 8],
      );
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test("a newer schema is refused; the password never shows", async () => {
    const url = await server.createDatabase();
    const clock = new ManualClock();
    const store = await openPostgresStore(url, clock, new SeededRandom("x"));
    const password = decodeURIComponent(new URL(url).password);
    assert.equal(store.kind, "postgres");
    assert.ok(!store.location.includes(password), store.location);
    await store.close();
    await adminRows(url, "INSERT INTO schema_migrations VALUES (99, 'future', 0)");
    await assert.rejects(openPostgresStore(url, clock, new SeededRandom("x")), {
      code: "schema_too_new",
      message: /schema version 99.*upgrade Palyra/,
    });
    const wrong = new URL(url);
    wrong.password = "Wrong-Secret-4711";
    await assert.rejects(openPostgresStore(wrong.toString(), clock, new SeededRandom("x")), (err: Error) => {
      assert.equal((err as { code?: string }).code, "unavailable");
      assert.ok(!err.message.includes("Wrong-Secret-4711"), err.message);
      assert.match(err.message, /password authentication failed/);
      return true;
    });
    await assert.rejects(
      openPostgresStore("postgresql://u:Secret-99@[bad", clock, new SeededRandom("x")),
      (err: Error) => {
        assert.ok(!err.message.includes("Secret-99"), err.message);
        return true;
      },
    );
  });
});

// --- fixtures and helpers ---

function code(clock: ManualClock, id: string, over: Partial<PairingCodeRecord> = {}): PairingCodeRecord {
  return {
    id,
    codeId: `C${id.slice(-5)}`,
    method: "pin",
    clientKind: "node",
    salt: Buffer.alloc(16, 1),
    iterations: 1000,
    w0: Buffer.alloc(32, 2),
    L: Buffer.alloc(65, 3),
    createdAt: clock.now(),
    expiresAt: clock.now() + 10 * MINUTE,
    maxAttempts: 5,
    failedAttempts: 0,
    state: "live",
    ...over,
  };
}

function request(clock: ManualClock, requestId: string, codeRowId: string): PairingRequestRecord {
  return {
    requestId,
    codeRowId,
    deviceId: `dev-${requestId}`,
    clientKind: "node",
    deviceName: "laptop",
    platform: "linux",
    identityPublic: Buffer.alloc(32, 4),
    identityFingerprint: "ab".repeat(32),
    csrDer: Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]),
    csrKeyFingerprint: "cd".repeat(32),
    sourceAddress: "127.0.0.1",
    comparisonCode: "123456",
    requestedAt: clock.now(),
    expiresAt: clock.now() + 5 * MINUTE,
    state: "pending_approval",
  };
}

function approve(r: PairingRequestRecord, clock: ManualClock): PairingRequestRecord {
  return {
    ...r,
    state: "approved",
    decidedAt: clock.now(),
    decidedBy: "admin",
    clientCertPem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    certExpiresAt: clock.now() + 30 * MINUTE,
  };
}

/** A pending request on a fresh code, the way Complete creates one. */
async function pendingRequest(
  store: GatewayStore,
  clock: ManualClock,
  id: () => string,
): Promise<PairingRequestRecord> {
  const c = code(clock, id());
  await store.pairing.insertCode(c, { kind: "pairing.code_created", actor: "admin" });
  const r = request(clock, id(), c.id);
  assert.ok(
    await store.pairing.consumeCode(c.id, clock.now(), r, { kind: "pairing.requested", actor: "system" }),
  );
  return r;
}

function device(clock: ManualClock, deviceId: string, fingerprint: string): PairedDevice {
  return {
    deviceId,
    clientKind: "node",
    deviceName: deviceId,
    platform: "linux",
    identityPublicKey: Buffer.alloc(32, 5),
    identityFingerprint: "ef".repeat(32),
    current: { fingerprint, expiresAt: clock.now() + 10 * MINUTE },
    pairedAt: clock.now(),
    updatedAt: clock.now(),
  };
}

function capabilityRequest(clock: ManualClock, requestId: string, state: CapabilityRequestRecord["state"]) {
  return {
    requestId,
    deviceId: "node-1",
    capability: "echo",
    inputJson: '{"x":1}',
    maxPayloadBytes: 65536,
    state,
    createdAt: clock.now(),
    deadlineAt: clock.now() + 30_000,
  } satisfies CapabilityRequestRecord;
}

/** Every signal a store delivers, as `<topic>:<id>` in arrival order. */
function recordSignals(store: GatewayStore) {
  const entries: string[] = [];
  const waiters: { want: string; resolve: () => void }[] = [];
  const offs = (["pairing_request", "device", "node_request"] as SignalTopic[]).map((topic) =>
    store.signals.subscribe(topic, (id) => {
      entries.push(`${topic}:${id}`);
      for (const w of waiters.filter((x) => x.want === `${topic}:${id}`)) w.resolve();
    }),
  );
  return {
    entries,
    waitFor: (want: string, timeoutMs = SIGNAL_TIMEOUT_MS) =>
      entries.includes(want)
        ? Promise.resolve()
        : withTimeout(
            new Promise<void>((resolve) => waiters.push({ want, resolve })),
            `signal ${want}`,
            timeoutMs,
          ),
    stop: () => {
      for (const off of offs) off();
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, what: string, ms = SIGNAL_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function adminRows<R>(url: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as R[];
  } finally {
    await client.end();
  }
}
