import { CommonError } from "./errors.js";

/** Parses `host:port` or `[v6]:port`; the one place gateway addresses are split. */
/**
 * A node's gateways: one `host:port`, or several separated by commas (the gateways of a cluster, tried in
 * turn when one goes away). Each checked; at most 8; duplicates dropped.
 */
export function gatewayAddresses(value: string): string[] {
  const addresses = [...new Set(value.split(",").map((a) => a.trim()))];
  if (addresses.length > 8) throw new CommonError("invalid_input", "at most 8 gateway addresses");
  for (const address of addresses) splitHostPort(address);
  return addresses;
}

export function splitHostPort(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535)
    throw new CommonError("invalid_input", `a gateway address is host:port, not ${value}`);
  return { host: (match[1] ?? match[2])!, port };
}
