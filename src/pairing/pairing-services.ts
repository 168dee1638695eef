import type { Clock } from "../common/clock.js";
import type { Random } from "../common/random.js";
import type { CertificateAuthority } from "../identity/ca.js";
import { DeviceRegistry } from "../identity/device-registry.js";
import type { GatewayStore } from "../store/gateway-store.js";
import { ApprovalService } from "./approvals.js";
import { CodeService } from "./code-service.js";
import { PairingGatewayService } from "./gateway-service.js";

export interface PairingServices {
  registry: DeviceRegistry;
  codes: CodeService;
  approvals: ApprovalService;
  service: PairingGatewayService;
}

/** Wires the gateway's pairing services over one store and CA (the daemon, tests and benchmarks share it). */
export function createPairingServices(deps: {
  store: GatewayStore;
  ca: CertificateAuthority;
  clock: Clock;
  random: Random;
  registry?: DeviceRegistry;
  clientCertificateLifetimeMs?: number;
  /** BeginPairing per minute from one address and in all (defaults in limits.ts). */
  beginRates?: { perAddress: number; total: number };
}): PairingServices {
  const { store, ca, clock, random } = deps;
  const registry = deps.registry ?? new DeviceRegistry(store.devices, clock);
  const codes = new CodeService(store.pairing, ca, clock, random);
  const approvals = new ApprovalService(store.pairing, store.signals, registry, ca, clock, {
    ...(deps.clientCertificateLifetimeMs === undefined
      ? {}
      : { clientCertificateLifetimeMs: deps.clientCertificateLifetimeMs }),
  });
  const service = new PairingGatewayService({
    repo: store.pairing,
    audit: store.audit,
    codes,
    approvals,
    registry,
    ca,
    clock,
    random,
    ...(deps.beginRates ? { beginRates: deps.beginRates } : {}),
  });
  return { registry, codes, approvals, service };
}
