import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { ConnectionRegistry, type RegistrableSocket } from "./connection-registry.js";
import {
  ANONYMOUS,
  type ConnectionPeer,
  connectionPeerOf,
  normalizeAddress,
  tagConnection,
} from "./peer-identity.js";

class StubSocket extends EventEmitter implements RegistrableSocket {
  destroyed = false;
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit("close");
  }
}

let nextPort = 40_000;
function peerOf(deviceId?: string): ConnectionPeer {
  return {
    identity:
      deviceId === undefined ? ANONYMOUS : { kind: "device", deviceId, fingerprint: `fp-${deviceId}` },
    remoteAddress: "127.0.0.1",
    remotePort: nextPort++,
    localAddress: "127.0.0.1",
    localPort: 7444,
    connectedAt: 0,
  };
}

test("connections are found by their endpoints and counted per device", () => {
  const registry = new ConnectionRegistry();
  const a = peerOf("A");
  const anon = peerOf();
  assert.equal(registry.add(new StubSocket(), a), true);
  assert.equal(registry.add(new StubSocket(), peerOf("A")), true);
  assert.equal(registry.add(new StubSocket(), anon), true);
  assert.equal(registry.connectionCount(), 3);
  assert.equal(registry.connectionCount("A"), 2);
  assert.deepEqual(registry.connectedDevices(), ["A"]);
  assert.equal(registry.lookup(a), a);
  // grpc-js reports IPv4 clients of a dual-stack listener as IPv4-mapped IPv6.
  assert.equal(
    registry.lookup({ ...anon, remoteAddress: "::ffff:127.0.0.1", localAddress: "::ffff:127.0.0.1" }),
    anon,
  );
  assert.equal(registry.lookup({ ...a, remotePort: 1 }), undefined);
});

test("entries leave when their socket closes, and a destroyed socket is never added", () => {
  const registry = new ConnectionRegistry();
  const socket = new StubSocket();
  const peer = peerOf("B");
  registry.add(socket, peer);
  socket.emit("close");
  assert.equal(registry.connectionCount(), 0);
  assert.equal(registry.connectionCount("B"), 0);
  assert.equal(registry.lookup(peer), undefined);
  const dead = new StubSocket();
  dead.destroyed = true;
  assert.equal(registry.add(dead, peerOf("B")), false);
  assert.equal(registry.connectionCount(), 0);
});

test("closeDevice ends the device's calls, then destroys its sockets, and leaves others alone", async () => {
  const registry = new ConnectionRegistry();
  const mine = [new StubSocket(), new StubSocket()];
  const other = new StubSocket();
  for (const s of mine) registry.add(s, peerOf("C"));
  registry.add(other, peerOf("D"));
  const order: string[] = [];
  mine[0]?.once("close", () => order.push("socket"));
  const ended: string[] = [];
  registry.trackCall("C", (reason) => {
    order.push("call");
    ended.push(reason);
  });
  registry.trackCall("C", () => {
    throw new Error("a failing terminator must not stop the others");
  });
  const untrackD = registry.trackCall("D", () => ended.push("wrong device"));
  assert.equal(registry.liveCallCount("C"), 2);

  assert.equal(registry.closeDevice("C", "revoked by admin"), 2);
  assert.deepEqual(ended, ["revoked by admin"]);
  // Out of the registry at once; destroyed on the next turn, after the ended calls' status is written.
  assert.equal(registry.connectionCount("C"), 0);
  assert.deepEqual(order, ["call"]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ["call", "socket"]);
  assert.ok(mine.every((s) => s.destroyed));
  assert.equal(other.destroyed, false);
  assert.equal(registry.connectionCount("C"), 0);
  assert.equal(registry.liveCallCount("C"), 0);
  assert.equal(registry.closeDevice("C"), 0);
  untrackD();
  assert.equal(registry.liveCallCount("D"), 0);
  assert.equal(registry.closeAll(), 1);
  assert.equal(other.destroyed, true);

  // Without live calls, the sockets are destroyed before closeDevice returns.
  const lone = new StubSocket();
  registry.add(lone, peerOf("F"));
  assert.equal(registry.closeDevice("F"), 1);
  assert.equal(lone.destroyed, true);
});

test("the peer is kept as a symbol property, readable through a forwarding proxy", () => {
  const socket = new StubSocket();
  const peer = peerOf("E");
  tagConnection(socket, peer);
  // Like http2's session.socket: a Proxy that forwards reads to the real socket.
  const proxy = new Proxy({}, { get: (_t, prop) => Reflect.get(socket, prop) });
  assert.deepEqual(connectionPeerOf(proxy), peer);
  assert.ok(Object.isFrozen(connectionPeerOf(socket)));
  assert.equal(connectionPeerOf(undefined), undefined);
  assert.equal(normalizeAddress("::ffff:10.0.0.1"), "10.0.0.1");
  assert.equal(normalizeAddress("::1"), "::1");
  assert.equal(normalizeAddress("::ffff:zz"), "::ffff:zz");
});
