import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { adminHttp } from "../src/cli/admin-http-client.js";
import { runCli, startDaemon, testEnv } from "./helpers/cli.js";

/** The console's HTTP edge against a real daemon: sign-in, cookie, CSRF, origin, events, headers. */

const root = mkdtempSync(join(tmpdir(), "palyra-console-auth-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("console auth: no cookie 401, no CSRF 403, foreign origin 403, token never in responses or logs", async () => {
  const state = join(root, "gateway");
  const daemon = await startDaemon(state);
  const token = readFileSync(join(state, "admin.token"), "utf8").trim();
  const base = daemon.summary.admin_url;
  const host = new URL(base).host;
  const seen: string[] = [];
  const call = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(new URL(path, base), init);
    const text = await res.text();
    seen.push(text, JSON.stringify([...res.headers]));
    return { status: res.status, text, headers: res.headers };
  };
  try {
    // The console page itself, with a strict policy and no secrets.
    const index = await call("/");
    assert.equal(index.status, 200);
    assert.match(index.headers.get("content-type") ?? "", /text\/html/);
    assert.match(
      index.headers.get("content-security-policy") ?? "",
      /default-src 'self'.*frame-ancestors 'none'/,
    );
    assert.equal((await call("/some/deep/link")).status, 200, "client routes fall back to the page");
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(index.text)?.[1];
    assert.ok(asset);
    const script = await call(asset);
    assert.equal(script.status, 200);
    assert.match(script.headers.get("cache-control") ?? "", /immutable/);
    // URLs in the bundle: only XML namespace names and React's error-text link, never fetched (the
    // browser test checks every request stays on this origin; the CSP would block any other).
    const urls = new Set(script.text.match(/https?:\/\/[a-zA-Z0-9./_-]+/g) ?? []);
    for (const url of urls)
      assert.match(url, /^(http:\/\/www\.w3\.org\/|https:\/\/react\.dev\/errors\/)/, url);

    // Requests without the session cookie (or the token) get 401.
    assert.equal((await call("/v1/devices")).status, 401);
    assert.equal((await call("/v1/pairing/codes", { method: "POST", body: "{}" })).status, 401);
    assert.equal((await call("/console/session")).status, 401);

    // Sign-in: wrong token 401; right token sets an HttpOnly, SameSite=Strict cookie.
    const json = { "content-type": "application/json" };
    const wrong = await call("/console/login", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ token: "x" }),
    });
    assert.equal(wrong.status, 401);
    const login = await call("/console/login", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ token }),
    });
    assert.equal(login.status, 200);
    const setCookie = login.headers.get("set-cookie") ?? "";
    assert.match(setCookie, /^palyra_console=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\//);
    const cookie = setCookie.split(";")[0]!;
    const { csrf } = JSON.parse(login.text) as { csrf: string };
    assert.match(csrf, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!login.text.includes(token));

    // The cookie alone is not enough, even to read: a page on another port of this host gets the
    // cookie too, but not the CSRF token the console keeps in its own origin's storage.
    assert.equal((await call("/v1/devices", { headers: { cookie } })).status, 403);
    assert.equal((await call("/console/session", { headers: { cookie } })).status, 403);
    assert.equal((await call("/v1/devices", { headers: { cookie, "x-palyra-csrf": csrf } })).status, 200);
    const resumed = await call("/console/session", { headers: { cookie, "x-palyra-csrf": csrf } });
    assert.equal(resumed.status, 200);
    assert.ok(!resumed.text.includes(csrf), "no endpoint hands the CSRF token out again");
    const mint = { method: "POST", body: JSON.stringify({ method: "pin" }) };
    assert.equal((await call("/v1/pairing/codes", { ...mint, headers: { ...json, cookie } })).status, 403);
    assert.equal(
      (await call("/v1/pairing/codes", { ...mint, headers: { ...json, cookie, "x-palyra-csrf": "wrong" } }))
        .status,
      403,
    );
    assert.equal(
      (
        await call("/v1/pairing/codes", {
          ...mint,
          headers: { ...json, cookie, "x-palyra-csrf": csrf, origin: "http://evil.example" },
        })
      ).status,
      403,
    );
    const minted = await call("/v1/pairing/codes", {
      ...mint,
      headers: { ...json, cookie, "x-palyra-csrf": csrf, origin: `http://${host}` },
    });
    assert.equal(minted.status, 201);
    assert.equal(
      (await call(`/v1/secrets/${encodeURIComponent("global/k")}`, { method: "DELETE", headers: { cookie } }))
        .status,
      403,
    );

    // Live updates: a change arrives on the event stream as the topics it touched.
    const events = await fetch(new URL("/v1/events", base), { headers: { cookie, "x-palyra-csrf": csrf } });
    assert.equal(events.status, 200);
    assert.match(events.headers.get("content-type") ?? "", /text\/event-stream/);
    const reader = events.body!.getReader();
    const qr = await call("/v1/pairing/codes", {
      method: "POST",
      body: JSON.stringify({ method: "qr" }),
      headers: { ...json, cookie, "x-palyra-csrf": csrf },
    });
    assert.equal(qr.status, 201);
    assert.match(
      JSON.parse(qr.text).qr_svg,
      /^<svg /,
      "the QR code comes drawn, for the page to show as an image",
    );
    let stream = "";
    const deadline = Date.now() + 10_000;
    while (!/event: change\ndata: \{"topics":\[[^\]]*"pairing"/.test(stream)) {
      assert.ok(Date.now() < deadline, `no change event: ${stream}`);
      const { value, done } = await reader.read();
      if (done) break;
      stream += new TextDecoder().decode(value);
    }
    await reader.cancel();

    // Sign-out ends the session for good.
    assert.equal(
      (await call("/console/logout", { method: "POST", headers: { cookie, "x-palyra-csrf": csrf } })).status,
      200,
    );
    assert.equal((await call("/v1/devices", { headers: { cookie, "x-palyra-csrf": csrf } })).status, 401);

    // Only this gateway's names are served (a DNS-rebinding page names its own host).
    const rebound = await adminHttp(new URL("/healthz", base), {
      method: "GET",
      headers: { host: `evil.example:${new URL(base).port}` },
      timeoutMs: 5000,
    });
    assert.equal(rebound.status, 421);
    // A malformed request target is answered 400, and the daemon lives on.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(base).port), "127.0.0.1", () =>
        socket.end("GET //[ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
      );
      let answer = "";
      socket.on("data", (d) => {
        answer += d;
      });
      socket.on("end", () => resolve(answer));
      socket.on("error", reject);
    });
    assert.match(raw, /^HTTP\/1\.1 (400|404|200)/);
    assert.equal((await call("/healthz")).status, 200, "still serving");
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  for (const text of seen) assert.ok(!text.includes(token), "the admin token appeared in a response");
  assert.ok(!daemon.stderr().includes(token), "the admin token appeared in the daemon's log");
});

test("beyond loopback the admin port serves HTTPS only, with the gateway's certificate; cookies are Secure", async () => {
  const state = join(root, "wide");
  const daemon = await startDaemon(state, testEnv(), ["--admin-host", "0.0.0.0", "--allow-non-loopback"]);
  try {
    const url = new URL(daemon.summary.admin_url);
    assert.equal(url.protocol, "https:");
    assert.equal(url.hostname, "127.0.0.1", "a wildcard bind is announced through loopback");
    const caPem = readFileSync(join(state, "ca.pem"), "utf8");
    await assert.rejects(fetch(new URL("/healthz", url)), "an unknown CA is refused by a default client");
    const health = await adminHttp(new URL("/healthz", url), {
      method: "GET",
      headers: {},
      timeoutMs: 5000,
      caPem,
    });
    assert.equal(health.status, 200);
    const plain = await adminHttp(new URL(`http://127.0.0.1:${url.port}/healthz`), {
      method: "GET",
      headers: {},
      timeoutMs: 5000,
    }).catch((err: Error) => err);
    assert.ok(plain instanceof Error || plain.status !== 200, "no plain HTTP on the TLS port");
    const token = readFileSync(join(state, "admin.token"), "utf8").trim();
    const login = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        new URL("/console/login", url),
        { method: "POST", ca: caPem, headers: { "content-type": "application/json" } },
        (res) => {
          res.resume();
          resolve(String(res.headers["set-cookie"] ?? ""));
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify({ token }));
    });
    assert.match(login, /; Secure/);
    // The local CLI finds the daemon through daemon.json and trusts the gateway's CA for it.
    const listed = await runCli(["devices", "list", "--state-root", state, "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), { devices: [], next_after: null, total: 0 });
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
