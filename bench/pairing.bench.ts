import { performance } from "node:perf_hooks";
import { p256 } from "@noble/curves/nist.js";
import { ManualClock } from "../src/common/clock.js";
import { limits } from "../src/common/limits.js";
import { systemRandom } from "../src/common/random.js";
import { CertificateAuthority } from "../src/identity/ca.js";
import { DeviceIdentity } from "../src/identity/device-identity.js";
import { DevicePairingClient, type PairingTransport } from "../src/pairing/device-client.js";
import { createPairingServices } from "../src/pairing/pairing-services.js";
import { openGatewayStore } from "../src/store/gateway-store.js";
import type { BenchResult } from "./harness.js";

const SUITE = "pairing";

/**
 * Gateway-side CPU per pairing (Begin, Exchange, Complete, with the SQLite writes), measured with
 * process.cpuUsage around the gateway calls only, beside raw P-256 scalar multiplications in the same
 * run. Codes are minted with 1000 PBKDF iterations (the least a device accepts); device work is not counted.
 */
export async function run(): Promise<BenchResult[]> {
  // The least a device accepts (it refuses fewer); minting is outside the measured gateway calls anyway.
  (limits as { pinPbkdfIterations: number }).pinPbkdfIterations = 1_000;
  const clock = new ManualClock(Date.now());
  const ca = await CertificateAuthority.create({ clock, random: systemRandom });
  const store = openGatewayStore(":memory:", clock, systemRandom);
  const { codes, service } = createPairingServices({ store, ca, clock, random: systemRandom });

  let gatewayCpuUs = 0;
  const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
    const before = process.cpuUsage();
    try {
      return await fn();
    } finally {
      const used = process.cpuUsage(before);
      gatewayCpuUs += used.user + used.system;
    }
  };
  const transport: PairingTransport = {
    begin: (i) =>
      timed(() =>
        service.begin(i, `10.1.${Math.floor(Math.random() * 255)}.${Math.floor(Math.random() * 255)}`),
      ),
    exchange: (i) => timed(() => service.exchange(i)),
    complete: (i) => timed(() => service.complete(i)),
    status: (i) => service.status(i),
  };
  const pairings = 60;
  const wallStart = performance.now();
  for (let i = 0; i < pairings; i++) {
    const minted = await codes.mint({ method: "pin" });
    const identity = DeviceIdentity.generate(clock, systemRandom);
    const client = new DevicePairingClient(transport, identity, clock, systemRandom);
    await client.pair({
      codeId: minted.code_id,
      secret: minted.pin!,
      clientKind: "node",
      deviceName: "bench",
      platform: "linux",
    });
  }
  const wallMs = performance.now() - wallStart;
  const cpuMsPerPairing = gatewayCpuUs / 1000 / pairings;

  const G = p256.Point.BASE;
  // 1000 of them (about 0.5 s): a shorter window is easily skewed by whatever else the machine runs.
  const scalars = Array.from({ length: 1000 }, () => p256.utils.randomSecretKey());
  // Warm-up (500 ms): noble builds its base-point table on first use and the JIT must settle, neither of
  // which may be counted as multiplications.
  for (const warmUntil = performance.now() + 500; performance.now() < warmUntil; )
    for (const s of scalars.slice(0, 10)) G.multiply(BigInt(`0x${Buffer.from(s).toString("hex")}`));
  // CPU time, like the pairing figure: wall time would also count whatever else the machine runs.
  const start = process.cpuUsage();
  let count = 0;
  for (const s of scalars) {
    G.multiply(BigInt(`0x${Buffer.from(s).toString("hex")}`) % p256.Point.Fn.ORDER || 1n);
    count++;
  }
  const mulCpu = process.cpuUsage(start);
  const mulMs = (mulCpu.user + mulCpu.system) / 1000 / count;
  store.close();
  return [
    {
      suite: SUITE,
      name: "gateway CPU per pairing (Begin..Complete)",
      value: round(cpuMsPerPairing),
      unit: "ms",
      iterations: pairings,
      durationMs: wallMs,
    },
    {
      suite: SUITE,
      name: "raw P-256 base-point scalar multiplication (@noble/curves, CPU)",
      value: round(mulMs),
      unit: "ms",
      iterations: count,
    },
    {
      suite: SUITE,
      name: "scalar multiplications' worth of CPU per pairing",
      value: round(cpuMsPerPairing / mulMs),
      unit: "x",
    },
  ];
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
