import { performance } from "node:perf_hooks";
import { NodeService } from "../src/gen/palyra/v1/node_pb.js";
import { latencyOf, latencyRows, ratioRow, sleep } from "./figures.js";
import type { BenchResult } from "./harness.js";
import { type BenchGateway, connectNode, type SimNode, startGateway } from "./node-port-fixture.js";

const SUITE = "dispatch";
const NODES = 100;
/**
 * Untimed calls before the first series: latency keeps falling for some hundreds of calls on a fresh
 * store (JIT, SQLite's WAL growing to its working size).
 */
const WARMUP_FIRST = 1_000;
const WARMUP = 300;
/** Per half: the 1-node series and the ping-pong are measured before and after the 100-node series. */
const HALF = 500;
const SAMPLES_MANY = 1_000;

/**
 * Capability round trip as the admin API sees it: NodeRuntime.invoke(device, "echo") -> Dispatch
 * pushed down the device's Connect stream -> the simulated node answers CapabilityResult -> invoke
 * resolves. One call at a time, with 1 connected node and with 100 (each its own mTLS connection and
 * stream; calls go round-robin). Baseline in the same run: a Heartbeat/Cancel ping-pong on a Connect
 * stream of a node port with the same TLS and policy but no NodeRuntime (so no SQLite). The 1-node and
 * ping-pong samples are taken half before and half after the 100-node series (A-B-A), so that load
 * drifting on a shared machine does not land on one side only.
 */
export async function run(): Promise<BenchResult[]> {
  const gw = await startGateway();
  const nodes: SimNode[] = [];
  try {
    nodes.push(await connectNode(gw, await gw.pair()));
    const ping = await pingPongs(gw, HALF);
    const one = await roundTrips(gw, nodes, WARMUP_FIRST, HALF);
    while (nodes.length < NODES) nodes.push(await connectNode(gw, await gw.pair()));
    const many = latencyOf(await roundTrips(gw, nodes, WARMUP, SAMPLES_MANY));
    for (const node of nodes.splice(1)) node.close();
    await sleep(200); // the server ends the 99 sessions and detaches them from the runtime
    one.push(...(await roundTrips(gw, nodes, WARMUP, HALF)));
    ping.push(...(await pingPongs(gw, HALF)));
    const single = latencyOf(one);
    const pong = latencyOf(ping);
    return [
      ...latencyRows(SUITE, "stream ping-pong, no runtime (baseline)", pong),
      ...latencyRows(SUITE, "invoke round trip, 1 node", single),
      ...latencyRows(SUITE, `invoke round trip, ${NODES} nodes`, many),
      ratioRow(SUITE, "1-node p50 per ping-pong p50 (runtime + SQLite share)", single.p50 / pong.p50),
      ratioRow(SUITE, `${NODES}-node p50 per 1-node p50`, many.p50 / single.p50),
      ratioRow(SUITE, `${NODES}-node p99 per 1-node p99`, many.p99 / single.p99),
    ];
  } finally {
    for (const node of nodes) node.close();
    await gw.close();
  }
}

async function roundTrips(
  gw: BenchGateway,
  nodes: readonly SimNode[],
  warmup: number,
  samples: number,
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < warmup + samples; i++) {
    const node = nodes[i % nodes.length] as SimNode;
    const start = performance.now();
    const record = await gw.runtime.invoke(node.deviceId, "echo", `{"n":${i}}`);
    const elapsed = performance.now() - start;
    if (record.state !== "succeeded") throw new Error(`invoke ended ${record.state}: ${record.error}`);
    if (i >= warmup) times.push(elapsed);
  }
  return times;
}

/** Heartbeat -> Cancel on one Connect stream of the bare port: transport and policy, nothing else. */
async function pingPongs(gw: BenchGateway, samples: number): Promise<number[]> {
  const device = await gw.pair();
  const bare = await gw.startBarePort();
  const client = gw.client(device, bare.port);
  try {
    const stream = client.service(NodeService).connect();
    const incoming = stream[Symbol.asyncIterator]();
    await stream.send({ body: { case: "hello", value: { deviceId: device.deviceId } } });
    await incoming.next(); // Config
    const times: number[] = [];
    for (let i = 0; i < WARMUP + samples; i++) {
      const start = performance.now();
      await stream.send({ body: { case: "heartbeat", value: { sentAtUnixMs: BigInt(i) } } });
      const reply = await incoming.next();
      const elapsed = performance.now() - start;
      if (reply.value?.body.case !== "cancel") throw new Error("the ping-pong stream ended early");
      if (i >= WARMUP) times.push(elapsed);
    }
    stream.end();
    await stream.done;
    return times;
  } finally {
    client.close();
    await bare.close();
  }
}
