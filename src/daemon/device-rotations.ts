import { EventEmitter } from "node:events";
import type { Scheduler } from "../common/scheduler.js";
import type { DeviceRegistry } from "../identity/device-registry.js";
import { IdentityError } from "../identity/errors.js";
import type { CertificateRotation, RenewalResult } from "../identity/rotation.js";
import { NodeRuntimeError } from "./node-runtime/errors.js";
import type { NodeRuntime } from "./node-runtime/node-runtime.js";

/**
 * Certificate renewals as the daemon sees them: renewals a device asks for (RenewCertificate), and
 * operator-requested rotation (`devices rotate`), which asks the connected node to renew now and waits
 * for that renewal to land.
 */
export class DeviceRotations {
  readonly #rotation: CertificateRotation;
  readonly #registry: DeviceRegistry;
  readonly #runtime: NodeRuntime;
  readonly #scheduler: Scheduler;
  readonly #renewed = new EventEmitter();

  constructor(deps: {
    rotation: CertificateRotation;
    registry: DeviceRegistry;
    runtime: NodeRuntime;
    scheduler: Scheduler;
  }) {
    this.#rotation = deps.rotation;
    this.#registry = deps.registry;
    this.#runtime = deps.runtime;
    this.#scheduler = deps.scheduler;
    this.#renewed.setMaxListeners(0);
  }

  async renew(deviceId: string, csrDer: Uint8Array, signature: Uint8Array): Promise<RenewalResult> {
    const result = await this.#rotation.renew(deviceId, csrDer, signature);
    this.#renewed.emit(deviceId, result);
    return result;
  }

  /** Pushes Renew to the device's node session and resolves with the renewal it triggers. */
  async rotate(deviceId: string, reason: string, waitMs: number): Promise<RenewalResult> {
    const device = await this.#registry.get(deviceId);
    if (!device) throw new IdentityError("device_not_found", `no paired device ${deviceId}`);
    if (device.revokedAt !== undefined)
      throw new IdentityError("device_revoked", `device ${deviceId} is revoked`);
    let timer: unknown;
    let listener: ((r: RenewalResult) => void) | undefined;
    const renewed = new Promise<RenewalResult>((resolve, reject) => {
      listener = resolve;
      this.#renewed.once(deviceId, listener);
      timer = this.#scheduler.setTimeout(
        () =>
          reject(
            new NodeRuntimeError(
              "renewal_timeout",
              `node ${deviceId} did not renew within ${Math.round(waitMs / 1000)} s; it renews by itself on schedule`,
            ),
          ),
        waitMs,
      );
    });
    try {
      if (!this.#runtime.requestRenewal(deviceId, reason))
        throw new NodeRuntimeError(
          "node_offline",
          `node ${deviceId} is not connected; it renews by itself at 2/3 of its certificate's life`,
        );
      return await renewed;
    } finally {
      this.#scheduler.clearTimeout(timer);
      if (listener) this.#renewed.off(deviceId, listener);
      renewed.catch(() => undefined);
    }
  }
}
