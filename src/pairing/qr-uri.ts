import { isCodeId } from "./codes.js";
import { PairingError } from "./errors.js";

/**
 * `palyra://pair?v=1&gw=<host:port>&id=<code-id>&s=<secret>&ca=<b64url sha256 of CA SPKI>&k=<client-kind>`.
 * The `ca` pin lets the device refuse an impostor gateway before it sends a byte.
 */
export interface QrPayload {
  gateway: string;
  codeId: string;
  secret: string;
  caSpkiSha256: Buffer;
  clientKind: string;
}

const MAX_URI_LENGTH = 512;
const B64URL = /^[A-Za-z0-9_-]+$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/;
export const CLIENT_KIND = /^[a-z][a-z0-9_-]{0,31}$/;

export function buildQrUri(payload: QrPayload): string {
  const params = new URLSearchParams({
    v: "1",
    gw: payload.gateway,
    id: payload.codeId,
    s: payload.secret,
    ca: payload.caSpkiSha256.toString("base64url"),
    k: payload.clientKind,
  });
  return `palyra://pair?${params.toString()}`;
}

/** Validates every field's shape before use; any deviation is one clear error. */
export function parseQrUri(uri: string): QrPayload {
  const bad = (why: string) => new PairingError("invalid_input", `not a Palyra pairing QR code: ${why}`);
  if (typeof uri !== "string" || uri.length > MAX_URI_LENGTH) throw bad("too long");
  if (!uri.startsWith("palyra://pair?")) throw bad("expected palyra://pair?...");
  const params = new URLSearchParams(uri.slice("palyra://pair?".length));
  const one = (name: string) => {
    const values = params.getAll(name);
    if (values.length !== 1) throw bad(`parameter ${name} must appear once`);
    return values[0]!;
  };
  if (one("v") !== "1") throw bad("unsupported version");
  const gateway = one("gw");
  const hostPort = HOST_PORT.exec(gateway);
  if (!hostPort || Number(hostPort[2]) < 1 || Number(hostPort[2]) > 65535) throw bad("gw must be host:port");
  const codeId = one("id");
  if (!isCodeId(codeId)) throw bad("bad code id");
  const secret = one("s");
  if (!B64URL.test(secret) || Buffer.from(secret, "base64url").length !== 16) throw bad("bad secret");
  const ca = one("ca");
  const caSpkiSha256 = Buffer.from(ca, "base64url");
  if (!B64URL.test(ca) || caSpkiSha256.length !== 32) throw bad("bad CA pin");
  const clientKind = one("k");
  if (!CLIENT_KIND.test(clientKind)) throw bad("bad client kind");
  for (const key of params.keys())
    if (!["v", "gw", "id", "s", "ca", "k"].includes(key)) throw bad(`unknown parameter ${key}`);
  return { gateway, codeId, secret, caSpkiSha256, clientKind };
}
