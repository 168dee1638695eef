import { PairingService } from "../../gen/palyra/v1/pairing_pb.js";
import type { PairingGatewayService } from "../../pairing/gateway-service.js";
import {
  beginFromWire,
  beginToWire,
  completeFromWire,
  completeToWire,
  exchangeFromWire,
  exchangeToWire,
  grpcStatusOf,
  statusFromWire,
  statusToWire,
} from "./pairing-mapping.js";
import { RpcError } from "./rpc-error.js";
import type { NodePortServer } from "./server.js";

/** Serves PairingService on the node port. Every method is anonymous: the device has no certificate yet. */
export function registerPairingService(server: NodePortServer, pairing: PairingGatewayService): void {
  const answer = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      const { code, details } = grpcStatusOf(err);
      throw new RpcError(code, details, { cause: err });
    }
  };
  server.addService(
    PairingService,
    {
      beginPairing: (req, ctx) =>
        answer(async () => beginToWire(await pairing.begin(beginFromWire(req), ctx.remoteAddress))),
      exchangePairing: (req) =>
        answer(async () => exchangeToWire(await pairing.exchange(exchangeFromWire(req)))),
      completePairing: (req) =>
        answer(async () => completeToWire(await pairing.complete(completeFromWire(req)))),
      getPairingStatus: (req, ctx) =>
        answer(async () => statusToWire(await pairing.status(statusFromWire(req), ctx.signal))),
    },
    {
      beginPairing: "anonymous",
      exchangePairing: "anonymous",
      completePairing: "anonymous",
      getPairingStatus: "anonymous",
    },
  );
}
