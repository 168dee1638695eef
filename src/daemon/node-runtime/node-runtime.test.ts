import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ManualClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { SeededRandom } from "../../common/random.js";
import { ManualScheduler } from "../../common/scheduler.js";
import { openGatewayStore } from "../../store/gateway-store.js";
import { type NodeCommand, NodeRuntime } from "./node-runtime.js";

const NODE = "01JNODE0000000000000000001";
const OTHER = "01JNODE0000000000000000002";
const root = mkdtempSync(join(tmpdir(), "palyra-runtime-"));
after(() => rmSync(root, { recursive: true, force: true }));

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

let setups = 0;
async function setup(dbPath = ":memory:") {
  const seed = `run-${setups++}`;
  const clock = new ManualClock(Date.UTC(2026, 10, 23));
  const scheduler = new ManualScheduler(clock);
  const store = openGatewayStore(dbPath, clock, new SeededRandom(`${seed}-store`));
  const runtime = new NodeRuntime({
    repo: store.nodes,
    clock,
    scheduler,
    random: new SeededRandom(`${seed}-ids`),
  });
  const sent: NodeCommand[] = [];
  await runtime.register(NODE, {
    platform: "linux",
    version: "0.1.0",
    capabilities: [
      { name: "echo", requiresMediation: false, description: "returns its input" },
      { name: "sleep", requiresMediation: false, description: "" },
    ],
  });
  const { detach } = runtime.attach(NODE, { send: (c) => sent.push(c) });
  return { clock, scheduler, store, runtime, sent, detach };
}

test("a call is pushed at once and succeeds with the node's result", async () => {
  const { runtime, sent, store } = await setup();
  const done = runtime.invoke(NODE, "echo", '{"hi":1}');
  await tick(); // the row is stored, then the call is pushed
  assert.equal(sent.length, 1);
  const dispatch = sent[0]!;
  assert.equal(dispatch.kind, "dispatch");
  assert.equal(dispatch.kind === "dispatch" && dispatch.inputJson, '{"hi":1}');
  assert.equal((await store.nodes.request(dispatch.requestId))?.state, "dispatched");
  assert.equal(
    runtime.onResult(NODE, dispatch.requestId, { success: true, outputJson: '{"hi":1}', error: "" }),
    true,
  );
  const record = await done;
  assert.equal(record.state, "succeeded");
  assert.equal(record.outputJson, '{"hi":1}');
  assert.equal((await store.nodes.request(record.requestId))?.state, "succeeded");
});

test("on timeout the node gets Cancel, the call ends timed_out, and a late result is ignored", async () => {
  const { runtime, sent, scheduler, store } = await setup();
  const done = runtime.invoke(NODE, "sleep", "{}", { timeoutMs: 1000 });
  await tick(); // the row is stored, then the call is pushed
  const { requestId } = sent[0] as { requestId: string };
  scheduler.advance(999);
  assert.equal(sent.length, 1);
  scheduler.advance(1);
  assert.deepEqual(sent[1], { kind: "cancel", requestId, reason: "deadline exceeded" });
  const record = await done;
  assert.equal(record.state, "timed_out");
  assert.equal(runtime.onResult(NODE, requestId, { success: true, outputJson: "{}", error: "" }), false);
  assert.equal((await store.nodes.request(requestId))?.state, "timed_out", "terminal states are immutable");
});

test("a caller that goes away cancels its call on the node; a signal aborted after the end changes nothing", async () => {
  const { runtime, sent, store } = await setup();
  const caller = new AbortController();
  const done = runtime.invoke(NODE, "sleep", "{}", { timeoutMs: 60_000, signal: caller.signal });
  await tick();
  const { requestId } = sent[0] as { requestId: string };
  caller.abort();
  assert.deepEqual(sent[1], { kind: "cancel", requestId, reason: "the caller went away" });
  const record = await done;
  assert.equal(record.state, "cancelled");
  assert.equal((await store.nodes.request(requestId))?.state, "cancelled");

  const finished = new AbortController();
  const echoed = runtime.invoke(NODE, "echo", "1", { signal: finished.signal });
  await tick();
  const second = sent[2] as { requestId: string };
  runtime.onResult(NODE, second.requestId, { success: true, outputJson: "1", error: "" });
  assert.equal((await echoed).state, "succeeded");
  finished.abort();
  assert.equal(sent.length, 3, "no Cancel for a call that already ended");
  assert.equal((await store.nodes.request(second.requestId))?.state, "succeeded");
});

test("a result from another device is not accepted", async () => {
  const { runtime, sent, scheduler } = await setup();
  const done = runtime.invoke(NODE, "echo", "{}", { timeoutMs: 1000 });
  await tick(); // the row is stored, then the call is pushed
  const { requestId } = sent[0] as { requestId: string };
  assert.equal(
    runtime.onResult(OTHER, requestId, { success: true, outputJson: '"forged"', error: "" }),
    false,
  );
  scheduler.advance(1000);
  assert.equal((await done).state, "timed_out");
});

test("input and output sizes, offline nodes, unknown capabilities and bad timeouts are refused clearly", async () => {
  const { runtime, sent, detach } = await setup();
  assert.throws(() => runtime.invoke(NODE, "echo", "x".repeat(11), { maxPayloadBytes: 10 }), {
    code: "payload_too_large",
  });
  assert.throws(() => runtime.invoke(NODE, "nope", "{}"), { code: "capability_unknown" });
  assert.throws(() => runtime.invoke(NODE, "echo", "{}", { timeoutMs: 500 }), {
    code: "invalid_input",
    message: /1 to 120 seconds/,
  });
  const done = runtime.invoke(NODE, "echo", "{}", { maxPayloadBytes: 10 });
  await tick(); // the row is stored, then the call is pushed
  const { requestId } = sent[0] as { requestId: string };
  runtime.onResult(NODE, requestId, { success: true, outputJson: "y".repeat(11), error: "" });
  const record = await done;
  assert.equal(record.state, "failed");
  assert.match(record.error ?? "", /output is larger than 10 bytes/);
  detach();
  assert.throws(() => runtime.invoke(NODE, "echo", "{}"), { code: "node_offline" });
});

test("the per-node queue is bounded", async () => {
  const { runtime } = await setup();
  for (let i = 0; i < limits.nodeQueueLimit; i++) void runtime.invoke(NODE, "sleep", "{}");
  assert.throws(() => runtime.invoke(NODE, "sleep", "{}"), { code: "queue_full" });
});

test("presence: online with heartbeats, stale after 3 silent intervals, offline when detached", async () => {
  const { runtime, clock, detach } = await setup();
  assert.equal(runtime.presence(NODE), "online");
  clock.advance(limits.heartbeatIntervalMs * limits.stalePresenceIntervals);
  assert.equal(runtime.presence(NODE), "online");
  clock.advance(1);
  assert.equal(runtime.presence(NODE), "stale");
  runtime.heartbeat(NODE);
  assert.equal(runtime.presence(NODE), "online");
  detach();
  assert.equal(runtime.presence(NODE), "offline");
});

test("after a crash, unfinished requests become failed ('gateway restarted') on the next start", async () => {
  const path = join(root, "crash.db");
  const first = await setup(path);
  void first.runtime.invoke(NODE, "sleep", "{}");
  await tick(); // the row is stored, then the call is pushed
  const { requestId } = first.sent[0] as { requestId: string };
  first.store.close(); // the process dies with the request dispatched
  const second = await setup(path);
  assert.deepEqual(await second.runtime.reconcile(), { failed: 1, pruned: 0 });
  const record = await second.store.nodes.request(requestId);
  assert.equal(record?.state, "failed");
  assert.equal(record?.error, "gateway restarted");
  assert.equal(second.store.db.pragma("integrity_check", { simple: true }), "ok");
});

test("capability names are validated at registration", async () => {
  const { runtime } = await setup();
  await assert.rejects(
    runtime.register(NODE, {
      platform: "l",
      version: "1",
      capabilities: [{ name: "Bad Name", requiresMediation: false, description: "" }],
    }),
    { code: "invalid_input" },
  );
});

test("re-registering unchanged writes nothing; a changed registration is stored and audited", async () => {
  const { runtime, store, clock } = await setup();
  const audited = async () => (await store.audit.query({ kind: "node.registered", limit: 100 })).length;
  const stored = async () => (await store.nodes.node(NODE))!;
  const before = { audits: await audited(), updatedAt: (await stored()).updatedAt };
  const same = {
    platform: "linux",
    version: "0.1.0",
    capabilities: [
      { name: "echo", requiresMediation: false, description: "returns its input" },
      { name: "sleep", requiresMediation: false, description: "" },
    ],
  };
  clock.advance(60_000);
  await runtime.register(NODE, same);
  assert.equal(await audited(), before.audits, "a reconnect's registration is not audited again");
  assert.equal((await stored()).updatedAt, before.updatedAt, "nor written");
  // Last seen still moves: the registration was heard.
  runtime.attach(NODE, { send: () => {} }).detach();
  assert.equal((await runtime.list())[0]!.last_seen_at, new Date(clock.now()).toISOString());

  clock.advance(1_000);
  await runtime.register(NODE, { ...same, capabilities: [same.capabilities[0]!] });
  assert.equal(await audited(), before.audits + 1);
  assert.deepEqual(
    (await stored()).capabilities.map((c) => c.name),
    ["echo"],
  );
  assert.equal((await stored()).updatedAt, clock.now());
  // The cache follows the store: a call to the dropped capability is refused.
  runtime.attach(NODE, { send: () => {} });
  assert.throws(() => runtime.invoke(NODE, "sleep", "null"), { code: "capability_unknown" });
});
