import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { SeededRandom } from "../../common/random.js";
import { ConsoleSessions, SESSION_COOKIE, sessionCookie, sessionSetCookie } from "./sessions.js";

test("console sessions end after the idle limit, and after the absolute limit even when active", () => {
  const clock = new ManualClock();
  const sessions = new ConsoleSessions(clock, new SeededRandom("sessions"));
  const idle = sessions.create();
  clock.advance(limits.consoleSessionIdleMs - 1);
  assert.ok(sessions.touch(idle.id), "still live just before the idle limit");
  clock.advance(limits.consoleSessionIdleMs);
  assert.equal(sessions.touch(idle.id), undefined, "gone after idling");

  const busy = sessions.create();
  for (let t = 0; t < limits.consoleSessionMaxMs; t += limits.consoleSessionIdleMs / 2) {
    assert.ok(sessions.touch(busy.id));
    clock.advance(limits.consoleSessionIdleMs / 2);
  }
  assert.equal(sessions.touch(busy.id), undefined, "gone after its maximum life despite activity");
});

test("console sessions: unknown, malformed and ended ids are refused; CSRF compared exactly", () => {
  const sessions = new ConsoleSessions(new ManualClock(), new SeededRandom("csrf"));
  const issued = sessions.create();
  assert.equal(sessions.touch(undefined), undefined);
  assert.equal(sessions.touch("x".repeat(43)), undefined);
  assert.equal(sessions.touch(`${issued.id}=`), undefined);
  const live = sessions.touch(issued.id);
  assert.ok(live);
  assert.ok(sessions.csrfMatches(live, issued.csrf));
  assert.ok(!sessions.csrfMatches(live, `${issued.csrf}x`));
  assert.ok(!sessions.csrfMatches(live, undefined));
  assert.ok(!sessions.csrfMatches(live, [issued.csrf]));
  sessions.end(issued.id);
  assert.equal(sessions.touch(issued.id), undefined);
});

test("the session cookie is HttpOnly and SameSite=Strict, and parses back out of a Cookie header", () => {
  const header = sessionSetCookie("abc", 60_000, false);
  assert.match(header, /^palyra_console=abc; HttpOnly; SameSite=Strict; Path=\/; Max-Age=60$/);
  assert.match(sessionSetCookie("abc", 60_000, true), /; Secure$/);
  assert.equal(sessionCookie(`other=1; ${SESSION_COOKIE}=abc; x=y`), "abc");
  assert.equal(sessionCookie("other=1"), undefined);
  assert.equal(sessionCookie(undefined), undefined);
});

test("background requests do not keep a session alive", () => {
  const clock = new ManualClock();
  const sessions = new ConsoleSessions(clock, new SeededRandom("background"));
  const issued = sessions.create();
  for (let t = 0; t < limits.consoleSessionIdleMs; t += 15_000) {
    assert.ok(sessions.touch(issued.id, false), "a refresh still sees the live session");
    clock.advance(15_000);
  }
  assert.equal(sessions.touch(issued.id, false), undefined, "idle despite the page's own refreshes");
});
