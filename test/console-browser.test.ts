import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { ulid } from "ulid";
import { countAuditRows, seedAuditRows } from "./helpers/audit-rows.js";
import { spawnCli, startDaemon, startPair, testEnv } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";

/**
 * The console in a real browser (Debian's chromium, driven by playwright-core), against a real daemon
 * and a real `palyra node run`: sign in, mint a PIN, watch the node's request arrive live, approve it,
 * see the node online, invoke echo, search devices and nodes, revoke the device and see the node go
 * offline, page through more than 1000 audit events, mint a QR code and copy its URI. Screenshots of
 * every page, at desktop and phone width, go to test-artifacts/console/.
 */

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = resolve(import.meta.dirname, "../test-artifacts/console");
const root = mkdtempSync(join(tmpdir(), "palyra-console-"));
let browser: Browser | undefined;
after(async () => {
  await browser?.close();
  rmSync(root, { recursive: true, force: true });
});

const WAIT = { timeout: 30_000 };
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
/** Audit events written straight into the running gateway's database: more than one page can hold. */
const SEEDED = 1100;

test("console: sign in, pair a node live, approve, invoke echo, search, revoke, page the audit log; every page screenshotted", async () => {
  assert.ok(existsSync(CHROMIUM), "Debian's chromium must be installed (scripts/test.sh installs it)");
  mkdirSync(ARTIFACTS, { recursive: true });
  const state = join(root, "gateway");
  const daemon = await startDaemon(state);
  const token = readFileSync(join(state, "admin.token"), "utf8").trim();
  const origin = new URL(daemon.summary.admin_url).origin;
  const adminGet = async <T>(path: string): Promise<T> => {
    const res = await fetch(new URL(path, origin), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, path);
    return (await res.json()) as T;
  };
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const page = await context.newPage();
  const urls: string[] = [];
  const htmls: string[] = [];
  context.on("request", (request) => urls.push(request.url()));
  const violations: string[] = [];
  const shot = async (name: string, target: Page = page) => {
    htmls.push(await target.content());
    await target.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    violations.push(...(await axeViolations(target, name)));
  };
  let node: ReturnType<typeof spawnCli> | undefined;
  try {
    await page.goto(daemon.summary.admin_url);
    await page.getByLabel("Admin token").waitFor(WAIT);
    await shot("01-login");
    await page.getByLabel("Admin token").fill("not-the-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "not this gateway's admin token" }).waitFor(WAIT);
    await page.getByLabel("Admin token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Pairing", level: 1 }).waitFor(WAIT);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "palyra_console");
    assert.ok(session, "a session cookie was set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");

    // Mint a PIN: shown once, in large type, with the command whose flags never break across lines.
    await page.getByRole("button", { name: "Create code" }).click();
    const pin = page.getByLabel("PIN to type on the device");
    await pin.waitFor(WAIT);
    const typed = (await pin.textContent())?.trim() ?? "";
    assert.match(typed, /^[0-9A-HJKMNP-TV-Z]{4}-\d{6}$/);
    await assertCommandArguments(page, [`--gateway ${daemon.summary.node_address}`, `--code ${typed}`]);
    await shot("02-pairing-pin");

    // A real node pairs with it; its request shows up without a reload.
    node = spawnCli(
      [
        "node",
        "run",
        "--gateway",
        daemon.summary.node_address,
        "--code",
        typed,
        "--name",
        "browser-test-node",
        "--mediation",
        "deny",
        "--state-root",
        join(root, "node"),
      ],
      testEnv(),
    );
    const exited = once(node, "close");
    const comparison = (await waitForOutput(node.stdout, /comparison code\s+(\d{6})/, { exited }))[1]!;
    const running = waitForOutput(node.stdout, /node ([0-9A-Z]{26}) running/, { exited });
    const card = page.locator("article.request", { hasText: "browser-test-node" });
    await card.waitFor(WAIT);
    const cardText = (await card.textContent()) ?? "";
    assert.match(cardText, new RegExp(comparison), "the card shows the device's comparison code");
    const { requests } = await adminGet<{ requests: { request_id: string; device_id: string }[] }>(
      "/v1/pairing/requests",
    );
    assert.equal(requests.length, 1);
    const request = requests[0]!;
    assert.ok(cardText.includes(`Request id${request.request_id}`), "the card shows the request id");
    assert.ok(cardText.includes(`Device id${request.device_id}`), "the card shows the device id");
    // The code is used now: its card says so, and no longer counts down.
    const minted = page.locator("section.minted");
    await minted.getByText("Used: a device has paired with this code").waitFor(WAIT);
    assert.ok(!((await minted.textContent()) ?? "").includes("Expires in"), "a used code shows no expiry");
    await pin.waitFor({ state: "detached", ...WAIT });
    await shot("03-pairing-request");
    await card.getByLabel("The device shows the same comparison code").check();
    await card.getByLabel("Reason (recorded in the audit log)").fill("browser test");
    await card.getByRole("button", { name: "Approve" }).click();
    const deviceId = (await running)[1]!;
    assert.equal(deviceId, request.device_id);
    await card.waitFor({ state: "detached", ...WAIT });

    // A second device, a CLI one, so that searching has something to leave out.
    const cliCode = await mintCode(state, "pin", "cli");
    const pair = startPair(
      ["--gateway", daemon.summary.node_address, "--code", cliCode.typed!, "--name", "browser-test-cli"],
      join(root, "cli"),
    );
    // Approved from its card with a role: a CLI device may become a (read-only) operator.
    await pair.requestId;
    await page.getByRole("link", { name: "Pairing" }).click();
    const cliCard = page.getByRole("article", { name: "browser-test-cli" });
    await cliCard.waitFor(WAIT);
    await cliCard.getByRole("combobox", { name: /^Role/ }).selectOption("viewer");
    await cliCard.getByRole("checkbox").check();
    await shot("03b-pairing-request-role");
    await cliCard.getByRole("button", { name: "Approve" }).click();
    assert.equal((await pair.exit).code, 0);

    // The node is online; search the list; invoke echo from the form.
    await page.getByRole("link", { name: "Nodes" }).click();
    const panel = page.locator("section.panel");
    await panel.getByText("online").first().waitFor(WAIT);
    // The list names the node by the name it paired with, not by the tail of its id.
    const nodeList = page.getByRole("list", { name: "Nodes" });
    await nodeList.getByText("browser-test-node").first().waitFor(WAIT);
    await nodeList.getByText(/Last seen \d+ s ago/).waitFor(WAIT);
    await shot("04-nodes-online");
    const nodeSearch = page.getByLabel("Search nodes");
    for (const needle of [deviceId.toLowerCase(), "LINUX", "online", "browser-test"]) {
      await nodeSearch.fill(needle);
      await nodeList.getByRole("button", { name: /browser-test-node/ }).waitFor(WAIT);
    }
    await nodeSearch.fill("no-such-node");
    await page.getByText("No node matches “no-such-node”.").waitFor(WAIT);
    assert.equal(await nodeList.getByRole("listitem").count(), 0, "the search leaves the node out");
    await nodeSearch.fill("");
    await panel.getByRole("combobox", { name: /^Capability/ }).selectOption("echo");
    await panel.getByRole("textbox", { name: /^Input \(JSON\)/ }).fill('{"hi": 1, "from": "browser"}');
    await panel.getByRole("button", { name: "Invoke" }).click();
    const output = panel.getByTestId("invoke-output");
    await output.waitFor(WAIT);
    assert.deepEqual(JSON.parse((await output.textContent()) ?? ""), { hi: 1, from: "browser" });
    await panel.getByText("succeeded").first().waitFor(WAIT);
    await shot("05-nodes-invoke");

    // Devices: both, each with when it was last seen; the search filters by name, id, platform, state.
    await page.getByRole("link", { name: "Devices" }).click();
    const row = page.getByRole("row", { name: /browser-test-node/ });
    const cliRow = page.getByRole("row", { name: /browser-test-cli/ });
    await row.waitFor(WAIT);
    await cliRow.waitFor(WAIT);
    await page.getByRole("columnheader", { name: "Last seen" }).waitFor(WAIT);
    assert.match(
      (await row.getByRole("cell").nth(3).textContent()) ?? "",
      /^\d+ s ago\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/,
    );
    assert.match((await cliRow.getByRole("cell").nth(1).textContent()) ?? "", /^cli\s*viewer/);
    await shot("06-devices");
    const deviceSearch = page.getByLabel("Search devices");
    await deviceSearch.fill("browser-test-cli");
    await row.waitFor({ state: "detached", ...WAIT });
    await cliRow.waitFor(WAIT);
    await deviceSearch.fill(deviceId);
    await cliRow.waitFor({ state: "detached", ...WAIT });
    await row.waitFor(WAIT);
    await deviceSearch.fill("linux");
    await cliRow.waitFor(WAIT);
    await row.waitFor(WAIT);
    await deviceSearch.fill("");
    // Rotate first (the node renews over its own connection), then revoke.
    const certificate = row.getByRole("cell").nth(4).locator("code");
    const before = (await certificate.textContent()) ?? "";
    await row.getByRole("button", { name: "Rotate" }).click();
    const rotateDialog = page.getByRole("dialog");
    await rotateDialog.getByRole("button", { name: "Rotate" }).click();
    await rotateDialog.waitFor({ state: "hidden", ...WAIT });
    await certificate.filter({ hasNotText: before }).waitFor(WAIT);
    await row.getByRole("button", { name: "Revoke" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Reason (recorded in the audit log)").fill("browser test revoke");
    await dialog.getByRole("button", { name: "Revoke" }).click();
    await row.getByText("revoked").first().waitFor(WAIT);
    await assertActionCellsAligned(page);
    await shot("07-devices-revoked");
    await deviceSearch.fill("revoked");
    await cliRow.waitFor({ state: "detached", ...WAIT });
    await row.waitFor(WAIT);
    await deviceSearch.fill("");
    await page.getByRole("link", { name: "Nodes" }).click();
    await page.locator("section.panel").getByText("offline").first().waitFor(WAIT);
    await shot("08-nodes-offline");

    // Secrets (metadata only; reveal behind a confirmation).
    await page.getByRole("link", { name: "Secrets" }).click();
    await page.getByLabel("Reference (scope/key)").fill("global/console_test");
    await page.getByLabel("Value", { exact: true }).fill("console-canary-value");
    await page.getByRole("button", { name: "Save" }).click();
    const secretRow = page.getByRole("row", { name: /global\/console_test/ });
    await secretRow.waitFor(WAIT);
    assert.ok(!(await page.content()).includes("console-canary-value"), "listed as metadata only");
    await assertActionCellsAligned(page);
    await shot("09-secrets");
    await secretRow.getByRole("button", { name: "Reveal" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Reveal" }).click();
    await secretRow.getByText("console-canary-value").waitFor(WAIT);

    // The audit log, filtered by kind in the gateway, then paged through more than 1000 events.
    seedAuditEvents(join(state, "palyra.db"), SEEDED, deviceId);
    await page.getByRole("link", { name: "Audit" }).click();
    const status = page.locator(".paging [role=status]");
    await status.getByText("200 events loaded").waitFor(WAIT);
    await page.getByLabel("Kind").selectOption("secret");
    await status.getByText(/^\d events loaded, none older$/).waitFor(WAIT);
    const kinds = await page.locator("tbody tr td:nth-child(2)").allTextContents();
    assert.deepEqual([...new Set(kinds)].sort(), ["secret.revealed", "secret.set"]);
    await shot("10-audit");
    await page.getByLabel("Kind").selectOption("");
    await status.getByText("200 events loaded").waitFor(WAIT);
    await page.getByRole("cell", { name: "device.revoked" }).waitFor(WAIT);
    const older = page.getByRole("button", { name: "Load older events" });
    for (let loaded = 200; await older.isVisible(); ) {
      await older.click();
      await status.getByText(new RegExp(`^(?!${loaded} )\\d+ events loaded`)).waitFor(WAIT);
      loaded = Number(/^\d+/.exec((await status.textContent()) ?? "")?.[0]);
    }
    const total = countAuditEvents(join(state, "palyra.db"));
    assert.ok(total > 1000);
    await status.getByText(`${total} events loaded, none older`).waitFor(WAIT);
    assert.equal(await page.locator("tbody tr").count(), total, "every event once, none twice");
    await page.getByRole("cell", { name: /seeded: 0$/ }).waitFor(WAIT);
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)");
    await page.screenshot({ path: join(ARTIFACTS, "10b-audit-paged-end.png") });

    // A QR code, drawn as an image with its palyra://pair URI, which wraps inside its card and copies.
    await page.getByRole("link", { name: "Pairing" }).click();
    await page.getByLabel("QR code").check();
    await page.getByRole("button", { name: "Create code" }).click();
    await page.getByRole("img", { name: "QR code to scan with the device" }).waitFor(WAIT);
    const uri = await page.getByLabel("Or paste this URI on the device").inputValue();
    assert.match(uri, /^palyra:\/\/pair\?v=1&/);
    await page.getByRole("button", { name: "Copy URI" }).click();
    await page.getByText("Copied").waitFor(WAIT);
    assert.equal(await page.evaluate("navigator.clipboard.readText()"), uri);
    await assertCommandArguments(page, ["--qr-uri"]);
    await assertInside(page, "section.minted");
    await page.getByRole("region", { name: "Live codes" }).getByRole("cell", { name: "qr" }).waitFor(WAIT);
    await shot("11-pairing-qr");

    // Readable on a phone: every page, and a fresh PIN and QR code whose command and URI stay inside.
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${daemon.summary.admin_url}/#/pairing`);
    await phone.getByRole("heading", { name: "Pairing", level: 1 }).waitFor(WAIT);
    await phone.getByRole("button", { name: "Create code" }).click();
    const phonePin = ((await phone.getByLabel("PIN to type on the device").textContent()) ?? "").trim();
    await assertCommandArguments(phone, [`--gateway ${daemon.summary.node_address}`, `--code ${phonePin}`]);
    await assertInside(phone, "section.minted");
    await shot("12-pairing-phone", phone);
    await phone.getByRole("button", { name: "Hide" }).click();
    await phone.getByLabel("QR code").check();
    await phone.getByRole("button", { name: "Create code" }).click();
    await phone.getByRole("img", { name: "QR code to scan with the device" }).waitFor(WAIT);
    await assertCommandArguments(phone, ["--qr-uri"]);
    await assertInside(phone, "section.minted");
    await shot("12b-pairing-qr-phone", phone);
    for (const [name, title] of [
      ["13-nodes-phone", "Nodes"],
      ["14-devices-phone", "Devices"],
      ["15-secrets-phone", "Secrets"],
      ["16-audit-phone", "Audit"],
    ] as const) {
      await phone.goto(`${daemon.summary.admin_url}/#/${title.toLowerCase()}`);
      await phone.getByRole("heading", { name: title, level: 1 }).waitFor(WAIT);
      await phone.locator("table, .node-list").first().waitFor(WAIT);
      const pageWidth = Number(await phone.evaluate("document.documentElement.scrollWidth"));
      assert.ok(pageWidth <= 390, `${title} fits the phone's width (${pageWidth} px)`);
      if (title === "Audit") await phone.getByLabel("Kind").selectOption("device");
      // Rows are stacked into cards on a phone, and are still rows of a table to assistive technology.
      if (title === "Devices") await phone.getByRole("row", { name: /browser-test-cli/ }).waitFor(WAIT);
      await shot(name, phone);
    }
    await phone.close();
  } finally {
    if (node && node.exitCode === null) node.kill("SIGKILL");
    await daemon.stop();
  }

  assert.deepEqual(violations, [], "axe-core found serious accessibility problems");
  for (const url of urls) assert.equal(new URL(url).origin, origin, `a request left the gateway: ${url}`);
  for (const url of urls) assert.ok(!url.includes(token), "the admin token appeared in a URL");
  for (const html of htmls) assert.ok(!html.includes(token), "the admin token appeared in page HTML");
  assert.ok(!daemon.stderr().includes(token), "the admin token appeared in the daemon's log");
});

/** axe-core's WCAG 2 A/AA rules, evaluated over DevTools (the page's CSP stays on); serious ones only. */
async function axeViolations(target: Page, name: string): Promise<string[]> {
  await target.evaluate(AXE_SOURCE);
  const found = (await target.evaluate(`axe.run(document, { runOnly: ["wcag2a", "wcag2aa"] })`)) as {
    violations: { id: string; impact: string; nodes: { target: string[] }[] }[];
  };
  return found.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${name}: ${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/**
 * The minted code's command keeps each of `flags` (a flag and its value) in one piece that the line
 * never breaks (one line box), and every other argument too; only an over-long value may wrap.
 */
async function assertCommandArguments(target: Page, flags: string[]): Promise<void> {
  const args = (await onElement(
    target,
    "section.minted .command",
    `(command) =>
    [...command.querySelectorAll(".arg")].map((arg) => ({
      text: arg.textContent,
      long: arg.classList.contains("long"),
      lines: arg.getClientRects().length,
    }))`,
  )) as { text: string; long: boolean; lines: number }[];
  for (const flag of flags)
    assert.ok(
      args.some((a) => a.text === flag),
      `${flag} is one unbroken piece: ${JSON.stringify(args)}`,
    );
  for (const a of args.filter((x) => !x.long)) assert.equal(a.lines, 1, `${a.text} is split across lines`);
}

/** Nothing in `card` reaches past its edges (long text wraps inside it). */
async function assertInside(target: Page, selector: string): Promise<void> {
  const outside = await onElement(
    target,
    selector,
    `(card) => {
    const box = card.getBoundingClientRect();
    return [...card.querySelectorAll("*")]
      .filter((el) => { const r = el.getBoundingClientRect(); return r.width > 0 && (r.right > box.right + 0.5 || r.left < box.left - 0.5); })
      .map((el) => el.tagName.toLowerCase() + "." + el.className);
  }`,
  );
  assert.deepEqual(outside, [], "these overflow their card");
}

/** A table's Actions cells line up with the other cells of their rows: same top and bottom borders. */
async function assertActionCellsAligned(target: Page): Promise<void> {
  const misaligned = await onElement(
    target,
    "tbody",
    `(body) =>
    [...body.rows].filter((row) => {
      const cells = [...row.cells].map((c) => c.getBoundingClientRect());
      return cells.some((c) => Math.abs(c.top - cells[0].top) > 0.5 || Math.abs(c.bottom - cells[0].bottom) > 0.5);
    }).length`,
  );
  assert.equal(misaligned, 0, "every cell of a row shares its borders");
}

/** Runs `fn` (a function's source) in the page on the first element `selector` finds. */
function onElement(target: Page, selector: string, fn: string): Promise<unknown> {
  return target.evaluate(`(${fn})(document.querySelector(${JSON.stringify(selector)}))`);
}

/** Writes `count` audit events (calls of echo, an hour ago) into the gateway's database while it runs. */
function seedAuditEvents(databasePath: string, count: number, deviceId: string): void {
  const start = Date.now() - 3_600_000;
  seedAuditRows(
    databasePath,
    Array.from({ length: count }, (_, i) => ({
      at: start + i,
      kind: "node.invoked",
      actor: "console",
      deviceId,
      detail: { request_id: ulid(start + i), capability: "echo", state: "succeeded", seeded: i },
    })),
  );
}

const countAuditEvents = (databasePath: string) => countAuditRows(databasePath);
