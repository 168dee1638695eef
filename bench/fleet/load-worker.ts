import { systemClock } from "../../src/common/clock.js";
import { systemRandom } from "../../src/common/random.js";
import { DeviceIdentity } from "../../src/identity/device-identity.js";
import { DevicePairingClient } from "../../src/pairing/device-client.js";
import { parseQrUri } from "../../src/pairing/qr-uri.js";
import { GrpcPairingTransport } from "../../src/transport/grpc/pairing-client.js";
import { type FleetIdentity, FleetNode, type FleetTarget, now } from "./fleet-node.js";

/**
 * A load process of the fleet benchmark (started by fleet.bench.ts over IPC). It pairs its share of
 * the fleet through the real protocol (QR codes minted and approved through the admin API), then holds
 * one FleetNode per device and answers the orchestrator's questions.
 */

export type WorkerRequest =
  | { type: "pair"; count: number; target: FleetTarget; admin: { url: string; token: string } }
  /** Holds already paired identities (a reused fleet) instead of pairing. */
  | { type: "load"; identities: FleetIdentity[]; target: FleetTarget }
  | { type: "connect"; rampInFlight: number }
  | { type: "stats" }
  | { type: "cuts"; deviceIds: string[] }
  | { type: "reset" }
  | { type: "stop" };

export interface WorkerStats {
  online: number;
  lost: number;
  answered: number;
  states: Record<string, number>;
}

/** Pairings in flight per worker: anonymous connections per address are capped at the gateway (16). */
const PAIRING_CONCURRENCY = 6;

const nodes: FleetNode[] = [];
const byId = new Map<string, FleetNode>();
const lostAt = new Map<string, number>();
let online = 0;
let lost = 0;

const send = (message: unknown) => process.send?.(message);

async function admin(base: { url: string; token: string }, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${base.token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

async function pairOne(
  index: number,
  target: FleetTarget,
  base: { url: string; token: string },
): Promise<FleetIdentity> {
  const minted = (await admin(base, "/v1/pairing/codes", { method: "qr", client_kind: "node" })) as {
    qr_uri: string;
  };
  const qr = parseQrUri(minted.qr_uri);
  const transport = new GrpcPairingTransport(target.host, target.port, qr.caSpkiSha256);
  try {
    const identity = DeviceIdentity.generate(systemClock, systemRandom);
    const client = new DevicePairingClient(transport, identity, systemClock, systemRandom);
    const pending = await client.pair({
      codeId: qr.codeId,
      secret: qr.secret,
      clientKind: "node",
      deviceName: `fleet-${process.pid}-${index}`,
      platform: "linux",
      caPin: qr.caSpkiSha256,
    });
    await admin(base, `/v1/pairing/requests/${pending.requestId}/approve`, { reason: "fleet benchmark" });
    const material = await client.waitForDecision(pending);
    if (!material.clientCertPem) throw new Error(`pairing ended ${material.state}: ${material.reason}`);
    return {
      deviceId: identity.deviceId,
      certPem: material.clientCertPem,
      keyPem: pending.keyPair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    };
  } finally {
    transport.close();
  }
}

const events = {
  online: (node: FleetNode) => {
    online++;
    lostAt.delete(node.identity.deviceId);
  },
  lost: (node: FleetNode, at: number) => {
    online--;
    lost++;
    lostAt.set(node.identity.deviceId, at);
  },
};

function hold(identity: FleetIdentity, target: FleetTarget): void {
  const node = new FleetNode(identity, target, events);
  nodes.push(node);
  byId.set(identity.deviceId, node);
}

async function pairAll(request: Extract<WorkerRequest, { type: "pair" }>): Promise<void> {
  let next = 0;
  let done = 0;
  const lane = async () => {
    for (;;) {
      const index = next++;
      if (index >= request.count) return;
      hold(await pairOne(index, request.target, request.admin), request.target);
      if (++done % 100 === 0) send({ type: "progress", paired: done });
    }
  };
  await Promise.all(Array.from({ length: PAIRING_CONCURRENCY }, lane));
  send({
    type: "paired",
    deviceIds: nodes.map((n) => n.identity.deviceId),
    identities: nodes.map((n) => n.identity),
  });
}

/** Starts every node, at most `rampInFlight` connecting at once (the first connect, not the storm). */
async function connectAll(rampInFlight: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < nodes.length) {
      const node = nodes[next++]!;
      node.start();
      while (node.state() === "connecting") await new Promise((r) => setTimeout(r, 5));
    }
  };
  await Promise.all(Array.from({ length: rampInFlight }, lane));
  send({ type: "connected" });
}

function stats(): WorkerStats {
  const states: Record<string, number> = {};
  let answered = 0;
  for (const node of nodes) {
    states[node.state()] = (states[node.state()] ?? 0) + 1;
    answered += node.answered;
  }
  return { online, lost, answered, states };
}

process.on("message", (raw) => {
  const request = raw as WorkerRequest;
  const fail = (err: Error) => send({ type: "error", message: err.stack ?? err.message });
  switch (request.type) {
    case "pair":
      pairAll(request).catch(fail);
      break;
    case "load":
      for (const identity of request.identities) hold(identity, request.target);
      send({ type: "paired", deviceIds: nodes.map((n) => n.identity.deviceId), identities: [] });
      break;
    case "connect":
      connectAll(request.rampInFlight).catch(fail);
      break;
    case "stats":
      send({ type: "stats", stats: stats(), at: now() });
      break;
    case "cuts":
      send({
        type: "cuts",
        cuts: Object.fromEntries(request.deviceIds.map((id) => [id, lostAt.get(id) ?? null])),
      });
      break;
    case "reset":
      lost = 0;
      send({ type: "reset" });
      break;
    case "stop":
      for (const node of nodes) node.stop();
      send({ type: "stopped" });
      setImmediate(() => process.exit(0));
      break;
  }
});
send({ type: "ready", known: byId.size });
