import type { PairedDevice } from "../identity/device-records.js";
import { roleAllows } from "../identity/device-roles.js";

/**
 * Who may call a method, the same table on the gRPC node port and on QUIC (docs/protocol.md lists it
 * per method):
 * - `anonymous`: any accepted connection, with or without a client certificate (pairing);
 * - `device`: a paired device's certificate, of any client kind;
 * - `node`: a paired device whose client kind is `node` (the node service: registering capabilities,
 *   the session the gateway dispatches on, renewal, deregistering). A `cli` or `desktop` device that
 *   could register would show up as a node and take dispatched work.
 * - `viewer`, `operator`: a paired device holding at least that role (device-roles.ts): the operator
 *   service. The role is read from the device's record on every call, so a change applies to the next.
 */
export type AccessPolicy = "anonymous" | "device" | "node" | "viewer" | "operator";

export const ACCESS_POLICIES: readonly AccessPolicy[] = ["anonymous", "device", "node", "viewer", "operator"];

/** Why `device` may not call a method under `policy`, or undefined if it may. */
export function deviceRefusal(
  policy: AccessPolicy,
  device: Pick<PairedDevice, "clientKind" | "role">,
): string | undefined {
  if (policy === "node")
    return device.clientKind === "node"
      ? undefined
      : `this method is for devices paired as "node"; this device was paired as "${device.clientKind}"`;
  if (policy === "viewer" || policy === "operator") {
    // A node's row holding a role (restored from elsewhere, written by hand) still grants nothing.
    if (device.clientKind === "node") return `this method needs the ${policy} role; a node never holds one`;
    if (roleAllows(device.role, policy)) return undefined;
    return device.role === undefined
      ? `this method needs the ${policy} role; this device has no role (an operator can grant one: palyra devices set-role)`
      : `this method needs the ${policy} role; this device is a ${device.role}`;
  }
  return undefined;
}
