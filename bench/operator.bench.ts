import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { splitHostPort } from "../src/common/host-port.js";
import { OperatorService } from "../src/gen/palyra/v1/operator_pb.js";
import { NodePortClient } from "../src/transport/grpc/client.js";
import { startDaemon } from "../test/helpers/cli.js";
import { pairCliDevice, storedCredentials } from "../test/helpers/devices.js";
import { latencyOf, latencyRows, ratioRow } from "./figures.js";
import type { BenchResult } from "./harness.js";

const SUITE = "operator";
const CALLS = 300;
const WARMUP = 30;

/**
 * What a remote operator pays per command on a warm connection: OperatorService.ListDevices over mutual
 * TLS with the device's certificate (the role and allowlist checked on the call), against the same
 * listing from the admin HTTP API with the token on loopback (baseline), in the same run, on the real
 * daemon. Both answer the same JSON from the same route.
 */
export async function run(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), "palyra-bench-operator-"));
  const daemon = await startDaemon(join(root, "gw"));
  let client: NodePortClient | undefined;
  try {
    const gateway = daemon.summary.node_address;
    await pairCliDevice(join(root, "gw"), gateway, join(root, "laptop"), { role: "viewer" });
    const creds = await storedCredentials(join(root, "laptop"));
    const { host, port } = splitHostPort(gateway);
    client = new NodePortClient({
      host,
      port,
      pinnedCa: creds.caCertPem,
      clientIdentity: { certChainPem: creds.clientCertPem, keyPem: creds.clientKeyPem },
    });
    const rpc = client.service(OperatorService);
    const token = readFileSync(join(root, "gw", "admin.token"), "utf8").trim();
    const url = new URL("/v1/devices", daemon.summary.admin_url);
    const http = () =>
      new Promise<void>((resolve, reject) => {
        const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          res.on("end", () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
          );
        });
        req.on("error", reject);
        req.end();
      });
    const grpc = async () => {
      await rpc.listDevices({});
    };
    const time = async (fn: () => Promise<void>) => {
      const start = performance.now();
      await fn();
      return performance.now() - start;
    };
    const base: number[] = [];
    const remote: number[] = [];
    // Interleaved, so both see the same load on a shared machine.
    for (let i = 0; i < WARMUP + CALLS; i++) {
      const b = await time(http);
      const r = await time(grpc);
      if (i >= WARMUP) {
        base.push(b);
        remote.push(r);
      }
    }
    const baseline = latencyOf(base);
    const operator = latencyOf(remote);
    return [
      ...latencyRows(SUITE, "admin HTTP GET /v1/devices with the token (baseline)", baseline),
      ...latencyRows(SUITE, "OperatorService.ListDevices over mutual TLS (viewer)", operator),
      ratioRow(SUITE, "ListDevices p50 per admin HTTP p50", operator.p50 / baseline.p50),
      ratioRow(SUITE, "ListDevices p99 per admin HTTP p99", operator.p99 / baseline.p99),
    ];
  } finally {
    client?.close();
    await daemon.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
