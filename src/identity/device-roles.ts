import { IdentityError } from "./errors.js";

/**
 * What a paired device may do as an operator (DESIGN section 12: the client kind decides the services,
 * the role decides the operator methods). `viewer` reads the gateway's state; `operator` also decides
 * and changes. A device without a role calls no operator method. `node` devices never hold a role: a
 * node runs dispatched work, often unattended, and must not also be able to approve or revoke.
 */
export type DeviceRole = "viewer" | "operator";

export const DEVICE_ROLES: readonly DeviceRole[] = ["viewer", "operator"];

const RANK: Record<DeviceRole, number> = { viewer: 1, operator: 2 };

export function isDeviceRole(value: unknown): value is DeviceRole {
  return value === "viewer" || value === "operator";
}

/** A role as typed by a user; `none` (or empty) means no role. */
export function parseRole(text: string): DeviceRole | undefined {
  if (text === "none" || text === "") return undefined;
  if (!isDeviceRole(text))
    throw new IdentityError(
      "invalid_role",
      `role must be operator, viewer or none (got ${JSON.stringify(text.slice(0, 32))})`,
    );
  return text;
}

/** Whether a device holding `held` may call a method that needs `required`. */
export function roleAllows(held: DeviceRole | undefined, required: DeviceRole): boolean {
  return held !== undefined && RANK[held] >= RANK[required];
}

/** Whether going from `from` to `to` takes away something the device could do (to none included). */
export function isDemotion(from: DeviceRole | undefined, to: DeviceRole | undefined): boolean {
  return from !== undefined && (to === undefined || RANK[to] < RANK[from]);
}

/** Refuses a role for a client kind that may not hold one. */
export function assertRoleFits(clientKind: string, role: DeviceRole | undefined): void {
  if (role !== undefined && clientKind === "node")
    throw new IdentityError(
      "invalid_role",
      `a device paired as "node" cannot hold the ${role} role; pair the operator's own CLI or desktop device`,
    );
}
