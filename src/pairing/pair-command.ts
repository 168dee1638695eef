/**
 * The exact command a device runs to use a code, filled in: `palyra pairing code` prints it, the console
 * shows it, and a device that used a code with the wrong client kind is told it.
 */
export interface PairCommandInput {
  clientKind: string;
  /** host:port of the node port (not needed with a QR URI, which carries it). */
  gateway?: string;
  /** `<code-id>-<pin>` for a PIN code. */
  typed?: string;
  qrUri?: string;
}

export function pairCommand(input: PairCommandInput): string {
  const verb = input.clientKind === "node" ? "palyra node run" : "palyra pair";
  // `palyra pair` defaults to cli; other kinds say theirs. A QR URI names its kind itself.
  const kind =
    input.clientKind === "node" || input.clientKind === "cli" || input.qrUri !== undefined
      ? ""
      : ` --client-kind ${input.clientKind}`;
  if (input.qrUri !== undefined) return `${verb} --qr-uri '${input.qrUri}'`;
  return `${verb} --gateway ${input.gateway ?? "<host:port>"} --code ${input.typed ?? "<code>"}${kind}`;
}

/** What the gateway says when a code is used by another kind of device than it was minted for. */
export function kindMismatchMessage(codeKind: string, deviceKind: string): string {
  return `this pairing code was minted for client kind "${codeKind}", not "${deviceKind}"`;
}

/** The code's kind from a kindMismatchMessage (as it arrives in a gRPC status), if it is one. */
export function parseKindMismatch(message: string): string | undefined {
  return /this pairing code was minted for client kind "([a-z][a-z0-9_-]{0,31})"/.exec(message)?.[1];
}
