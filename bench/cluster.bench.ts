import { performance } from "node:perf_hooks";
import { systemClock } from "../src/common/clock.js";
import { systemRandom } from "../src/common/random.js";
import { BUILT_IN_CAPABILITIES } from "../src/node-host/capabilities.js";
import { NodeSession } from "../src/node-host/node-session.js";
import { type Cluster, clusterReaches, startCluster } from "../test/helpers/cluster.js";
import { latencyOf, latencyRows, ratioRow } from "./figures.js";
import type { BenchResult } from "./harness.js";

const SUITE = "cluster";
const RUNS = 20;
const CALLS = 200;

/** Needs a PostgreSQL server (Debian's `postgresql`) and three daemons: run it by name. */
export const optIn = true;

/**
 * Three real gateways on one real PostgreSQL server. Revocation: a node host connected to gateway A is
 * revoked through gateway C (the cut travels as a NOTIFY), timed from the revoke request to the node
 * seeing its connection end; the baseline, in the same run, revokes a node through the gateway it is on.
 * Dispatch: echo calls through gateway B to a node on A (a row, a NOTIFY each way) against calls
 * through A itself.
 */
export async function run(): Promise<BenchResult[]> {
  const cluster = await startCluster("palyra-bench-cluster-");
  const sessions: NodeSession[] = [];
  try {
    await Promise.all(["a", "b", "c"].map((name) => cluster.start(name)));
    const remote: number[] = [];
    const local: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      remote.push(await revokeOnce(cluster, sessions, "c"));
      local.push(await revokeOnce(cluster, sessions, "a"));
      process.stderr.write(`cluster: revoke run ${i + 1}/${RUNS}\r`);
    }
    const { session, deviceId } = await nodeOnA(cluster);
    sessions.push(session);
    await clusterReaches(
      async () => (await cluster.admin("b", "GET", `/v1/nodes/${deviceId}`)).body.presence === "online",
    );
    const viaB = await calls(cluster, "b", deviceId);
    const viaA = await calls(cluster, "a", deviceId);
    const cutRemote = latencyOf(remote);
    const cutLocal = latencyOf(local);
    const callB = latencyOf(viaB);
    const callA = latencyOf(viaA);
    return [
      ...latencyRows(SUITE, "revoke through the node's gateway -> node cut (baseline)", cutLocal),
      ...latencyRows(SUITE, "revoke through another gateway -> node cut", cutRemote),
      ratioRow(SUITE, "cross-gateway revoke p99 per local revoke p99", cutRemote.p99 / cutLocal.p99),
      ...latencyRows(SUITE, "echo invoke through the node's gateway (baseline)", callA),
      ...latencyRows(SUITE, "echo invoke through another gateway", callB),
      ratioRow(SUITE, "cross-gateway invoke p50 per local invoke p50", callB.p50 / callA.p50),
    ];
  } finally {
    await Promise.all(sessions.map((s) => s.stop().catch(() => undefined)));
    await cluster.close();
  }
}

/** A node host (the real NodeSession) paired through A and connected to A. */
async function nodeOnA(
  cluster: Cluster,
): Promise<{ session: NodeSession; deviceId: string; cut: Promise<number> }> {
  const { identity, credentials } = await cluster.pairDevice("a", "b");
  let connected!: () => void;
  const ready = new Promise<void>((resolve) => {
    connected = resolve;
  });
  let cutAt!: (at: number) => void;
  const cut = new Promise<number>((resolve) => {
    cutAt = resolve;
  });
  const session = new NodeSession({
    deviceId: identity.deviceId,
    credentials,
    sign: (m) => identity.sign(m),
    capabilities: BUILT_IN_CAPABILITIES,
    consent: async () => false,
    clock: systemClock,
    random: systemRandom,
    onEvent: (e) => {
      if (e.kind === "connected") connected();
      if (e.kind === "disconnected") cutAt(performance.now());
    },
  });
  void session.start();
  await ready;
  return { session, deviceId: identity.deviceId, cut };
}

async function revokeOnce(cluster: Cluster, sessions: NodeSession[], via: string): Promise<number> {
  const { session, deviceId, cut } = await nodeOnA(cluster);
  sessions.push(session);
  const start = performance.now();
  const answer = await cluster.admin(via, "POST", `/v1/devices/${deviceId}/revoke`, { reason: "bench" });
  if (answer.status !== 200) throw new Error(`revoke failed: ${JSON.stringify(answer.body)}`);
  const ms = (await cut) - start;
  await session.stop();
  return ms;
}

async function calls(cluster: Cluster, via: string, deviceId: string): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < CALLS + 10; i++) {
    const start = performance.now();
    const answer = await cluster.admin(via, "POST", `/v1/nodes/${deviceId}/invoke`, {
      capability: "echo",
      input: i,
    });
    if (answer.body.state !== "succeeded") throw new Error(`invoke failed: ${JSON.stringify(answer.body)}`);
    if (i >= 10) samples.push(performance.now() - start);
  }
  return samples;
}
