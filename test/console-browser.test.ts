import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { spawnCli, startDaemon, testEnv } from "./helpers/cli.js";
import { waitForOutput } from "./helpers/devices.js";

/**
 * The console in a real browser (Debian's chromium, driven by playwright-core), against a real daemon
 * and a real `palyra node run`: sign in, mint a PIN, watch the node's request arrive live, approve it,
 * see the node online, invoke echo, revoke the device and see the node go offline. Screenshots of every
 * page go to test-artifacts/console/.
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

test("console: sign in, pair a node live, approve, invoke echo, revoke; every page screenshotted", async () => {
  assert.ok(existsSync(CHROMIUM), "Debian's chromium must be installed (scripts/test.sh installs it)");
  mkdirSync(ARTIFACTS, { recursive: true });
  const state = join(root, "gateway");
  const daemon = await startDaemon(state);
  const token = readFileSync(join(state, "admin.token"), "utf8").trim();
  const origin = new URL(daemon.summary.admin_url).origin;
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
  const page = await context.newPage();
  const urls: string[] = [];
  const htmls: string[] = [];
  page.on("request", (request) => urls.push(request.url()));
  const violations: string[] = [];
  const shot = async (name: string, target: Page = page) => {
    htmls.push(await target.content());
    await target.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    // axe-core's WCAG 2 A/AA rules on every page; evaluated over DevTools, so the page's CSP stays on.
    await target.evaluate(AXE_SOURCE);
    const found = (await target.evaluate(async () => {
      const axe = (globalThis as unknown as { axe: { run: (c: unknown, o: unknown) => Promise<unknown> } })
        .axe;
      return axe.run((globalThis as unknown as { document: unknown }).document, {
        runOnly: ["wcag2a", "wcag2aa"],
      });
    })) as { violations: { id: string; impact: string; nodes: { target: string[] }[] }[] };
    for (const v of found.violations)
      if (v.impact === "serious" || v.impact === "critical")
        violations.push(
          `${name}: ${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
        );
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

    // Mint a PIN: shown once, in large type.
    await page.getByRole("button", { name: "Create code" }).click();
    const pin = page.getByLabel("PIN to type on the device");
    await pin.waitFor(WAIT);
    const typed = (await pin.textContent())?.trim() ?? "";
    assert.match(typed, /^[0-9A-HJKMNP-TV-Z]{4}-\d{6}$/);
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
    assert.match(
      (await card.textContent()) ?? "",
      new RegExp(comparison),
      "the card shows the device's comparison code",
    );
    await shot("03-pairing-request");
    await card.getByLabel("The device shows the same comparison code").check();
    await card.getByLabel("Reason (recorded in the audit log)").fill("browser test");
    await card.getByRole("button", { name: "Approve" }).click();
    const deviceId = (await running)[1]!;
    await card.waitFor({ state: "detached", ...WAIT });

    // The node is online; invoke echo from the form.
    await page.getByRole("link", { name: "Nodes" }).click();
    const panel = page.locator("section.panel");
    await panel.getByText("online").first().waitFor(WAIT);
    // The list names the node by the name it paired with, not by the tail of its id.
    await page.getByRole("list", { name: "Nodes" }).getByText("browser-test-node").first().waitFor(WAIT);
    await shot("04-nodes-online");
    await panel.getByRole("combobox", { name: /^Capability/ }).selectOption("echo");
    await panel.getByRole("textbox", { name: /^Input \(JSON\)/ }).fill('{"hi": 1, "from": "browser"}');
    await panel.getByRole("button", { name: "Invoke" }).click();
    const output = panel.getByTestId("invoke-output");
    await output.waitFor(WAIT);
    assert.deepEqual(JSON.parse((await output.textContent()) ?? ""), { hi: 1, from: "browser" });
    await panel.getByText("succeeded").first().waitFor(WAIT);
    await shot("05-nodes-invoke");

    // Revoke it from the Devices page, with confirmation; the node goes offline.
    await page.getByRole("link", { name: "Devices" }).click();
    const row = page.getByRole("row", { name: /browser-test-node/ });
    await row.waitFor(WAIT);
    await shot("06-devices");
    // Rotate first (the node renews over its own connection), then revoke.
    const before = (await row.locator("td").nth(4).locator("code").textContent()) ?? "";
    await row.getByRole("button", { name: "Rotate" }).click();
    const rotateDialog = page.getByRole("dialog");
    await rotateDialog.getByRole("button", { name: "Rotate" }).click();
    await rotateDialog.waitFor({ state: "hidden", ...WAIT });
    await row.locator("td").nth(4).locator("code").filter({ hasNotText: before }).waitFor(WAIT);
    await row.getByRole("button", { name: "Revoke" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Reason (recorded in the audit log)").fill("browser test revoke");
    await dialog.getByRole("button", { name: "Revoke" }).click();
    await row.getByText("revoked").first().waitFor(WAIT);
    await shot("07-devices-revoked");
    await page.getByRole("link", { name: "Nodes" }).click();
    await page.locator("section.panel").getByText("offline").first().waitFor(WAIT);
    await shot("08-nodes-offline");

    // Secrets (metadata only; reveal behind a confirmation) and the audit log.
    await page.getByRole("link", { name: "Secrets" }).click();
    await page.getByLabel("Reference (scope/key)").fill("global/console_test");
    await page.getByLabel("Value", { exact: true }).fill("console-canary-value");
    await page.getByRole("button", { name: "Save" }).click();
    const secretRow = page.getByRole("row", { name: /global\/console_test/ });
    await secretRow.waitFor(WAIT);
    assert.ok(!(await page.content()).includes("console-canary-value"), "listed as metadata only");
    await shot("09-secrets");
    await secretRow.getByRole("button", { name: "Reveal" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Reveal" }).click();
    await secretRow.getByText("console-canary-value").waitFor(WAIT);
    await page.getByRole("link", { name: "Audit" }).click();
    await page.getByRole("cell", { name: "secret.revealed" }).waitFor(WAIT);
    await page.getByRole("cell", { name: "device.revoked" }).waitFor(WAIT);
    await shot("10-audit");

    // A QR code, drawn as an image with its palyra://pair URI.
    await page.getByRole("link", { name: "Pairing" }).click();
    await page.getByLabel("QR code").check();
    await page.getByRole("button", { name: "Create code" }).click();
    await page.getByRole("img", { name: "QR code to scan with the device" }).waitFor(WAIT);
    assert.match(
      await page.getByLabel("Or paste this URI on the device").inputValue(),
      /^palyra:\/\/pair\?v=1&/,
    );
    await page.getByRole("region", { name: "Live codes" }).getByRole("cell", { name: "qr" }).waitFor(WAIT);
    await shot("11-pairing-qr");

    // Readable on a phone.
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${daemon.summary.admin_url}/#/pairing`);
    await phone.getByRole("heading", { name: "Pairing", level: 1 }).waitFor(WAIT);
    await shot("12-pairing-phone", phone);
    await phone.goto(`${daemon.summary.admin_url}/#/nodes`);
    await phone.getByRole("heading", { name: "Nodes", level: 1 }).waitFor(WAIT);
    await shot("13-nodes-phone", phone);
    await phone.close();
    assert.ok(deviceId.length === 26);
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
