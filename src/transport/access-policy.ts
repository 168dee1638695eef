/**
 * Who may call a method, the same table on the gRPC node port and on QUIC (docs/protocol.md lists it
 * per method):
 * - `anonymous`: any accepted connection, with or without a client certificate (pairing);
 * - `device`: a paired device's certificate, of any client kind;
 * - `node`: a paired device whose client kind is `node` (the node service: registering capabilities,
 *   the session the gateway dispatches on, renewal, deregistering). A `cli` or `desktop` device that
 *   could register would show up as a node and take dispatched work.
 */
export type AccessPolicy = "anonymous" | "device" | "node";

export const ACCESS_POLICIES: readonly AccessPolicy[] = ["anonymous", "device", "node"];

/** Why a device of `clientKind` may not call a method under `policy`, or undefined if it may. */
export function clientKindRefusal(policy: AccessPolicy, clientKind: string): string | undefined {
  if (policy !== "node" || clientKind === "node") return undefined;
  return `this method is for devices paired as "node"; this device was paired as "${clientKind}"`;
}
