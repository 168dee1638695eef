import { performance } from "node:perf_hooks";
import { RpcStatus } from "../src/transport/grpc/rpc-error.js";
import { latencyOf, latencyRows, ratioRow, sleep } from "./figures.js";
import type { BenchResult } from "./harness.js";
import {
  type BenchGateway,
  connectNode,
  openSession,
  type SimNode,
  startGateway,
} from "./node-port-fixture.js";

const SUITE = "revoke";
const DEVICES = 100;
const WARMUP = 5;

/**
 * Revoke-to-disconnect: from DeviceRegistry.revoke + NodePortServer.closeDevice (what `devices revoke`
 * does in the admin API) to the node's open Connect stream ending on the client side, one device at a
 * time while all the others stay connected. Baseline in the same run, on the same connection just
 * before: the node half-closes its stream and waits for the gateway's OK (one stream-ending round trip).
 */
export async function run(): Promise<BenchResult[]> {
  const gw = await startGateway();
  const nodes: SimNode[] = [];
  try {
    for (let i = 0; i < WARMUP + DEVICES; i++) nodes.push(await connectNode(gw, await gw.pair()));
    const halfClose: number[] = [];
    const revoke: number[] = [];
    for (const [i, node] of nodes.entries()) {
      const closed = await halfCloseOnce(node);
      const revoked = await revokeOnce(gw, node);
      if (i >= WARMUP) {
        halfClose.push(closed);
        revoke.push(revoked);
      }
    }
    const base = latencyOf(halfClose);
    const cut = latencyOf(revoke);
    return [
      ...latencyRows(SUITE, "half-close -> OK seen by the node (baseline)", base),
      ...latencyRows(SUITE, "revoke + closeDevice -> stream end seen by the node", cut),
      ratioRow(SUITE, "revoke p50 per half-close p50", cut.p50 / base.p50),
      ratioRow(SUITE, "revoke p99 per half-close p99", cut.p99 / base.p99),
    ];
  } finally {
    for (const node of nodes) node.close();
    await gw.close();
  }
}

/** Ends the node's session from its side and opens a new one for the revocation. */
async function halfCloseOnce(node: SimNode): Promise<number> {
  const start = performance.now();
  node.session.stream.end();
  const end = await node.session.ended;
  if (end.status !== RpcStatus.OK) throw new Error(`half-close ended with status ${end.status}`);
  node.session = await openSession(node.client, node.deviceId);
  return end.at - start;
}

async function revokeOnce(gw: BenchGateway, node: SimNode): Promise<number> {
  const start = performance.now();
  await gw.devices.revoke(node.deviceId, "bench", "admin");
  gw.server.closeDevice(node.deviceId, "device revoked: bench");
  const end = await node.session.ended;
  if (end.status !== RpcStatus.PERMISSION_DENIED)
    throw new Error(`the revoked stream ended with status ${end.status}, not PERMISSION_DENIED`);
  // Let the server finish destroying the sockets before the next sample (closeDevice's grace period).
  for (
    let waited = 0;
    gw.server.connections.connectionCount(node.deviceId) > 0 && waited < 1_000;
    waited += 5
  )
    await sleep(5);
  return end.at - start;
}
