import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { QuicResponseSchema } from "../../gen/palyra/v1/quic_pb.js";
import { QuicTransportError } from "./errors.js";
import { encodeFrame } from "./framing.js";
import { PROTOCOL_VERSION } from "./quic-library.js";

/** Protobuf messages in QUIC frames, one codec for the client and the server side. */

export function encodeMessage<D extends DescMessage>(schema: D, message: MessageInitShape<D>): Uint8Array {
  return encodeFrame(toBinary(schema, create(schema, message)));
}

/** A frame's payload as `schema`; anything undecodable is `bad_request`, naming who sent it. */
export function decodeMessage<D extends DescMessage>(
  schema: D,
  bytes: Uint8Array,
  sender: string,
): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw new QuicTransportError("bad_request", `${sender} sent an invalid ${schema.typeName}`, {
      cause: err,
    });
  }
}

/** A QuicResponse frame; the protocol version is always ours. */
export function encodeResponse(response: MessageInitShape<typeof QuicResponseSchema>): Uint8Array {
  const message = create(QuicResponseSchema, response);
  message.protocolVersion = PROTOCOL_VERSION;
  return encodeFrame(toBinary(QuicResponseSchema, message));
}
