import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { systemClock } from "../src/common/clock.js";
import { systemRandom } from "../src/common/random.js";
import { NodeService } from "../src/gen/palyra/v1/node_pb.js";
import { QuicRequestSchema, QuicResponseSchema } from "../src/gen/palyra/v1/quic_pb.js";
import { CertificateAuthority } from "../src/identity/ca.js";
import type { DeviceCredentials } from "../src/pairing/device-store.js";
import { NodePortClient } from "../src/transport/grpc/client.js";
import { openQuicConnection, QuicNodeClient } from "../src/transport/quic/client.js";
import { QuicTransportError } from "../src/transport/quic/errors.js";
import { encodeFrame, readFrames } from "../src/transport/quic/framing.js";
import { type DaemonProcess, runCli, spawnCli, startDaemon } from "./helpers/cli.js";
import { mintCode, pairNodeViaCli, waitForOutput } from "./helpers/devices.js";
import { issueLeaf, within } from "./helpers/pki.js";

/**
 * The QUIC endpoint of a real daemon process (DESIGN section 6): mutual TLS with paired devices only,
 * structured errors for bad requests, and revocation closing live connections at once.
 */

const root = mkdtempSync(join(tmpdir(), "palyra-quic-"));
const gatewayRoot = join(root, "gateway");
let daemon: DaemonProcess;
let quicHost: string;
let quicPort: number;
let caPem: string;

before(async () => {
  daemon = await startDaemon(gatewayRoot);
  assert.ok(daemon.summary.quic_address, "the daemon serves QUIC by default");
  const at = daemon.summary.quic_address.lastIndexOf(":");
  quicHost = daemon.summary.quic_address.slice(0, at);
  quicPort = Number(daemon.summary.quic_address.slice(at + 1));
  caPem = readFileSync(join(gatewayRoot, "ca.pem"), "utf8");
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

function connect(identity?: { certChainPem: string; keyPem: string }) {
  return QuicNodeClient.connect({
    host: quicHost,
    port: quicPort,
    pinnedCa: caPem,
    ...(identity ? { clientIdentity: identity } : {}),
  });
}

const identityOf = (creds: DeviceCredentials) => ({
  certChainPem: creds.clientCertPem,
  keyPem: creds.clientKeyPem,
});
const isCode = (code: string) => (err: unknown) => err instanceof QuicTransportError && err.code === code;

/** One raw request stream: the bytes we choose, and the first answer frame decoded. */
async function rawRequest(creds: DeviceCredentials, bytes: Uint8Array) {
  const client = await openQuicConnection({
    host: quicHost,
    port: quicPort,
    pinnedCa: caPem,
    clientIdentity: identityOf(creds),
  });
  try {
    const stream = client.connection.newStream("bidi");
    const writer = stream.writable.getWriter();
    await writer.write(bytes);
    const first = await readFrames(stream.readable).next();
    if (first.done) throw new Error("the stream ended without an answer");
    return fromBinary(QuicResponseSchema, first.value);
  } finally {
    await client.destroy({ force: true }).catch(() => undefined);
  }
}

let paired: { deviceId: string; creds: DeviceCredentials };

test("mTLS QUIC health round trip with a paired device's certificate", async () => {
  paired = await pairNodeViaCli(gatewayRoot, daemon.summary.node_address, join(root, "node-a"));
  const client = await connect(identityOf(paired.creds));
  try {
    const health = await within(client.health(), "node.health");
    assert.equal(health.status, "ok");
    assert.equal(health.deviceId, paired.deviceId);
    assert.ok(Math.abs(Number(health.serverTimeUnixMs) - Date.now()) < 60_000);
  } finally {
    client.close();
  }
});

test("finding 6: a device paired as cli is refused the QUIC node methods (node.health here) with permission_denied", async () => {
  const cli = await pairNodeViaCli(gatewayRoot, daemon.summary.node_address, join(root, "cli-a"), "cli");
  const client = await connect(identityOf(cli.creds));
  try {
    await assert.rejects(within(client.health(), "node.health"), (err: unknown) => {
      return isCode("permission_denied")(err) && /paired as "cli"/.test((err as Error).message);
    });
  } finally {
    client.close();
  }
});

test("no client certificate, and a certificate from another CA, are refused in the handshake", async () => {
  const anonymous = await connect();
  try {
    await assert.rejects(within(anonymous.health(), "refusal"), isCode("unauthenticated"));
  } finally {
    anonymous.close();
  }
  const otherCa = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  const stranger = await issueLeaf(otherCa, "client");
  const foreign = await connect({ certChainPem: stranger.certPem, keyPem: stranger.keyPem });
  try {
    await assert.rejects(within(foreign.health(), "refusal"), (err: unknown) => {
      assert.ok(isCode("unauthenticated")(err), String(err));
      assert.match((err as Error).message, /unknown CA/);
      return true;
    });
  } finally {
    foreign.close();
  }
});

test("a frame announced over 512 KiB is answered frame_too_large; version and method mismatches get structured errors", async () => {
  const huge = new Uint8Array(4);
  new DataView(huge.buffer).setUint32(0, 64 * 1024 * 1024, false);
  const tooLarge = await rawRequest(paired.creds, huge);
  assert.equal(tooLarge.error?.code, "frame_too_large");

  const request = (protocolVersion: number, method: string) =>
    encodeFrame(toBinary(QuicRequestSchema, create(QuicRequestSchema, { protocolVersion, method })));
  const mismatch = await rawRequest(paired.creds, request(2, "node.health"));
  assert.equal(mismatch.error?.code, "unsupported_version");
  assert.equal(mismatch.protocolVersion, 1);
  const unknown = await rawRequest(paired.creds, request(1, "node.reboot"));
  assert.equal(unknown.error?.code, "unknown_method");
  const garbage = await rawRequest(paired.creds, encodeFrame(Uint8Array.of(0xff, 0xff, 0xff)));
  assert.equal(garbage.error?.code, "bad_request");
  // The connection and the server are fine afterwards.
  const client = await connect(identityOf(paired.creds));
  try {
    assert.equal((await within(client.health(), "health after errors")).status, "ok");
  } finally {
    client.close();
  }
});

test("revoking a device closes its live QUIC connection within 1 s and it cannot reconnect", async (t) => {
  const victim = await pairNodeViaCli(gatewayRoot, daemon.summary.node_address, join(root, "node-b"));
  const client = await connect(identityOf(victim.creds));
  const session = await within(client.openSession(), "session");
  await session.send({ body: { case: "hello", value: { deviceId: victim.deviceId } } });
  const first = await within(session[Symbol.asyncIterator]().next(), "config");
  assert.equal(first.value?.body.case, "config");

  const token = readFileSync(join(gatewayRoot, "admin.token"), "utf8").trim();
  const started = performance.now();
  const res = await fetch(new URL(`/v1/devices/${victim.deviceId}/revoke`, daemon.summary.admin_url), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ reason: "quic test" }),
  });
  assert.equal(res.status, 200, await res.text());
  const closedBy = await within(client.closed, "connection closed", 1_000);
  const elapsed = performance.now() - started;
  t.diagnostic(`revoke -> QUIC connection closed in ${elapsed.toFixed(1)} ms`);
  assert.ok(elapsed < 1_000);
  assert.ok(isCode("permission_denied")(closedBy), String(closedBy));

  const again = await connect(identityOf(victim.creds));
  try {
    await assert.rejects(within(again.health(), "refusal"), (err: unknown) => {
      assert.ok(isCode("unauthenticated")(err), String(err));
      assert.match((err as Error).message, /revoked/);
      return true;
    });
  } finally {
    again.close();
  }
});

async function invoke(deviceId: string, body: Record<string, unknown>) {
  const token = readFileSync(join(gatewayRoot, "admin.token"), "utf8").trim();
  const res = await fetch(new URL(`/v1/nodes/${deviceId}/invoke`, daemon.summary.admin_url), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test("a node host on --transport quic receives and answers dispatches end to end", async () => {
  const code = await mintCode(gatewayRoot);
  const child = spawnCli([
    "node",
    "run",
    "--gateway",
    daemon.summary.node_address,
    "--code",
    code.typed!,
    "--transport",
    "quic",
    "--quic-port",
    String(quicPort),
    "--mediation",
    "deny",
    "--state-root",
    join(root, "node-quic"),
  ]);
  const exited = once(child, "close");
  const requestId = (await waitForOutput(child.stdout, /request id\s+([0-9A-Z]{26})/, { exited }))[1]!;
  const connected = waitForOutput(child.stderr, /"event":"connected","detail":"[^"]+ over quic"/, { exited });
  const running = waitForOutput(child.stdout, /node ([0-9A-Z]{26}) running/, { exited });
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
  const deviceId = (await running)[1]!;
  await connected;

  const echoed = await invoke(deviceId, { capability: "echo", input: { over: "quic" }, timeout_seconds: 10 });
  assert.equal(echoed.status, 200, JSON.stringify(echoed.body));
  assert.equal(echoed.body.state, "succeeded");
  assert.deepEqual(echoed.body.output, { over: "quic" });
  const health = await invoke(deviceId, { capability: "system.health", timeout_seconds: 10 });
  assert.equal(health.body.state, "succeeded");
  const [parallel1, parallel2] = await Promise.all([
    invoke(deviceId, { capability: "echo", input: 1 }),
    invoke(deviceId, { capability: "echo", input: 2 }),
  ]);
  assert.deepEqual([parallel1.body.output, parallel2.body.output], [1, 2]);

  child.kill("SIGTERM");
  const [exitCode] = await within(exited, "node exit", 10_000);
  assert.equal(exitCode, 0);
});

test("resume after a forced disconnect continues the event sequence without gaps or duplicates", async () => {
  const node = await pairNodeViaCli(gatewayRoot, daemon.summary.node_address, join(root, "node-resume"));
  const [host, port] = daemon.summary.node_address.split(":") as [string, string];
  const grpc = new NodePortClient({
    host,
    port: Number(port),
    pinnedCa: caPem,
    clientIdentity: identityOf(node.creds),
  });
  await grpc.service(NodeService).registerNode({
    deviceId: node.deviceId,
    platform: "linux",
    version: "test",
    capabilities: [{ name: "echo", requiresMediation: false, description: "" }],
  });
  grpc.close();

  // Session 1: sees dispatches 1, 2 and 3, answers only the first, then its connection is cut.
  const first = await connect(identityOf(node.creds));
  const s1 = await first.openSession();
  const in1 = s1[Symbol.asyncIterator]();
  await s1.send({ body: { case: "hello", value: { deviceId: node.deviceId } } });
  const config1 = (await within(in1.next(), "config")).value!;
  assert.equal(config1.body.case, "config");
  const epoch = config1.body.case === "config" ? config1.body.value.epoch : "";
  assert.match(epoch, /^[0-9a-f]{16}$/);

  const calls = [1, 2, 3].map((n) =>
    invoke(node.deviceId, { capability: "echo", input: n, timeout_seconds: 30 }),
  );
  const seen1: { seq: number; requestId: string; input: string }[] = [];
  while (seen1.length < 3) {
    const message = (await within(in1.next(), "dispatch")).value!;
    if (message.body.case === "dispatch")
      seen1.push({
        seq: Number(message.seq),
        requestId: message.body.value.requestId,
        input: message.body.value.inputJson,
      });
  }
  const base = seen1[0]!.seq;
  assert.deepEqual(
    seen1.map((d) => d.seq),
    [base, base + 1, base + 2],
  );
  const answer = (session: typeof s1, requestId: string, outputJson: string) =>
    session.send({ body: { case: "capabilityResult", value: { requestId, success: true, outputJson } } });
  await answer(s1, seen1[0]!.requestId, seen1[0]!.input);
  assert.equal((await within(calls[0]!, "first call")).body.state, "succeeded");
  first.close();
  await within(first.closed, "first connection closed");

  // Session 2, resuming after the first event it handled: the other two come again, then new ones.
  const second = await connect(identityOf(node.creds));
  try {
    const s2 = await second.openSession();
    const in2 = s2[Symbol.asyncIterator]();
    await s2.send({
      body: { case: "hello", value: { deviceId: node.deviceId, epoch, resumeFrom: BigInt(base) } },
    });
    const config2 = (await within(in2.next(), "config")).value!;
    assert.equal(config2.body.case, "config");
    assert.equal(config2.body.case === "config" && config2.body.value.resumed, true);
    assert.equal(config2.body.case === "config" && config2.body.value.epoch, epoch);
    const later = invoke(node.deviceId, { capability: "echo", input: 4, timeout_seconds: 30 });
    const seen2: { seq: number; requestId: string; input: string }[] = [];
    while (seen2.length < 3) {
      const message = (await within(in2.next(), "replayed dispatch")).value!;
      assert.equal(message.body.case, "dispatch");
      if (message.body.case === "dispatch")
        seen2.push({
          seq: Number(message.seq),
          requestId: message.body.value.requestId,
          input: message.body.value.inputJson,
        });
    }
    assert.deepEqual(
      seen2.map((d) => d.seq),
      [base + 1, base + 2, base + 3],
      "no gap and no duplicate",
    );
    assert.deepEqual(
      seen2.slice(0, 2).map((d) => d.requestId),
      seen1.slice(1).map((d) => d.requestId),
    );
    for (const d of seen2) await answer(s2, d.requestId, d.input);
    const results = await within(Promise.all([calls[1]!, calls[2]!, later]), "resumed calls");
    assert.deepEqual(
      results.map((r) => [r.body.state, r.body.output]),
      [
        ["succeeded", 2],
        ["succeeded", 3],
        ["succeeded", 4],
      ],
    );
    s2.end();
  } finally {
    second.close();
  }
});
