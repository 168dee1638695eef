import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import * as tls from "node:tls";
import { type DaemonProcess, runCli, spawnCli, startDaemon, testEnv } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";

// Issue 13: SIGTERM with a gRPC node, a QUIC node and an idle anonymous TLS connection connected exits 0
// at once ("gateway stopped", daemon.json gone); the gateway says goodbye, so both nodes are back moments
// after it restarts. Timing is reported (diagnostics); the assertions only bound it loosely.
const root = mkdtempSync(join(tmpdir(), "palyra-restart-"));
const gatewayRoot = join(root, "gw");
let daemon: DaemonProcess | undefined;
after(async () => {
  await daemon?.stop("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

const TRIALS = 10;

function countMatches(text: string, pattern: RegExp): number {
  return (text.match(pattern) ?? []).length;
}

async function startNode(name: string, args: string[]) {
  const child = spawnCli(
    ["node", "run", "--mediation", "deny", "--state-root", join(root, name), ...args],
    testEnv(),
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = once(child, "close");
  const requestId = (await waitForOutput(child.stdout, /request id\s+([0-9A-Z]{26})/, { exited }))[1]!;
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
  await waitForOutput(child.stderr, /"event":"connected"/, { fromStart: true, exited });
  return { child, connections: () => countMatches(stderr, /"event":"connected"/g) };
}

test(`SIGTERM with nodes and an idle anonymous connection exits 0 at once; nodes are back right after a restart (${TRIALS} trials)`, async (t) => {
  daemon = await startDaemon(gatewayRoot);
  const nodeAddress = daemon.summary.node_address;
  const nodePort = nodeAddress.slice(nodeAddress.lastIndexOf(":") + 1);
  const quicPort = daemon.summary.quic_address!.slice(daemon.summary.quic_address!.lastIndexOf(":") + 1);
  const grpcNode = await startNode("grpc-node", [
    "--gateway",
    nodeAddress,
    "--code",
    (await mintCode(gatewayRoot)).typed!,
  ]);
  const quicNode = await startNode("quic-node", [
    "--gateway",
    nodeAddress,
    "--code",
    (await mintCode(gatewayRoot)).typed!,
    "--transport",
    "quic",
    "--quic-port",
    quicPort,
  ]);
  const ca = readFileSync(join(gatewayRoot, "ca.pem"), "utf8");
  const exits: number[] = [];
  const backGrpc: number[] = [];
  const backQuic: number[] = [];
  try {
    for (let trial = 0; trial < TRIALS; trial++) {
      const idle = tls.connect({
        host: "127.0.0.1",
        port: Number(nodePort),
        ca,
        servername: "localhost",
        ALPNProtocols: ["h2"],
      });
      idle.on("error", () => {});
      idle.resume();
      await once(idle, "secureConnect");
      const [grpcBefore, quicBefore] = [grpcNode.connections(), quicNode.connections()];
      const stoppedAt = Date.now();
      const running: DaemonProcess = daemon;
      const code: number | null = await running.stop("SIGTERM");
      exits.push(Date.now() - stoppedAt);
      assert.equal(code, 0, `trial ${trial}: exit code (stderr: ${running.stderr().slice(-500)})`);
      assert.match(running.stderr(), /gateway stopped/);
      assert.throws(() => readFileSync(join(gatewayRoot, "daemon.json")), /ENOENT/, "daemon.json removed");
      idle.destroy();

      const restartedAt = Date.now();
      daemon = await startDaemon(gatewayRoot, testEnv(), ["--node-port", nodePort, "--quic-port", quicPort]);
      const ready = Date.now();
      const backAt = async (node: { connections: () => number }, before: number) => {
        const deadline = Date.now() + 20_000;
        while (node.connections() <= before) {
          if (Date.now() > deadline) throw new Error(`trial ${trial}: node not back within 20 s`);
          await new Promise((r) => setTimeout(r, 20));
        }
        return Date.now() - ready;
      };
      const [g, q] = await Promise.all([backAt(grpcNode, grpcBefore), backAt(quicNode, quicBefore)]);
      backGrpc.push(g);
      backQuic.push(q);
      t.diagnostic(
        `trial ${trial}: exit ${exits.at(-1)} ms; restart took ${ready - restartedAt} ms; back after it: grpc ${g} ms, quic ${q} ms`,
      );
    }
  } finally {
    grpcNode.child.kill("SIGTERM");
    quicNode.child.kill("SIGTERM");
  }
  const max = (xs: number[]) => Math.max(...xs);
  t.diagnostic(`max exit ${max(exits)} ms; max back: grpc ${max(backGrpc)} ms, quic ${max(backQuic)} ms`);
  assert.ok(max(exits) < 3_000, `SIGTERM exits promptly (max ${max(exits)} ms)`);
  assert.ok(max(backGrpc) < 5_000 && max(backQuic) < 6_000, "nodes come back promptly");
});
