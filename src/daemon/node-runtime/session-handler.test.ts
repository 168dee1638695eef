import assert from "node:assert/strict";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create } from "@bufbuild/protobuf";
import { ManualClock } from "../../common/clock.js";
import { SeededRandom } from "../../common/random.js";
import { ManualScheduler } from "../../common/scheduler.js";
import { type NodeMessage, NodeMessageSchema } from "../../gen/palyra/v1/node_pb.js";
import { openGatewayStore } from "../../store/gateway-store.js";
import { NodeRuntime } from "./node-runtime.js";
import { type GatewayMessageInit, type NodeSessionStream, serveNodeSession } from "./session-handler.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const NODE = "01JNODE0000000000000000001";

/** The transport side in memory: the node's messages as an async iterable, the gateway's collected. */
function memoryStream(
  messages: AsyncIterable<NodeMessage>,
): NodeSessionStream & { sent: GatewayMessageInit[] } {
  const sent: GatewayMessageInit[] = [];
  return {
    sent,
    [Symbol.asyncIterator]: () => messages[Symbol.asyncIterator](),
    send: async (message) => {
      sent.push(message);
    },
  };
}

test("a long session does not keep memory per message (heartbeats for days stay flat)", async () => {
  const clock = new ManualClock(Date.UTC(2026, 11, 6));
  const store = openGatewayStore(":memory:", clock, new SeededRandom("session-store"));
  const runtime = new NodeRuntime({
    repo: store.nodes,
    clock,
    scheduler: new ManualScheduler(clock),
    random: new SeededRandom("session-ids"),
  });
  await runtime.register(NODE, { platform: "linux", version: "1", capabilities: [] });
  const hello = create(NodeMessageSchema, { body: { case: "hello", value: { deviceId: NODE } } });
  const heartbeat = create(NodeMessageSchema, { body: { case: "heartbeat", value: { sentAtUnixMs: 1n } } });
  let measured: { before: number; after: number } | undefined;
  const TOTAL = 300_000;
  async function* node() {
    yield hello;
    for (let i = 0; i < TOTAL; i++) {
      if (i === 50_000) {
        gc();
        measured = { before: process.memoryUsage().heapUsed, after: 0 };
      }
      // A real transport delivers each message in a later turn.
      if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
      yield heartbeat;
    }
    gc();
    measured!.after = process.memoryUsage().heapUsed;
  }
  const stream = memoryStream(node());
  await serveNodeSession(stream, NODE, runtime);
  // 250 000 heartbeats: a reaction kept per message would be tens of megabytes.
  const growth = measured!.after - measured!.before;
  assert.ok(
    growth < 5 * 1024 * 1024,
    `heap grew ${(growth / 1024 / 1024).toFixed(1)} MB over 250 000 heartbeats`,
  );
  assert.equal(stream.sent[0]?.body?.case, "config", "the session was served");
  store.close();
});
