// Browser end-to-end test of the web pages in a real headless Chromium
// (Debian's, never a downloaded one), driven by playwright-core.
//
//   BASE_URL         the site (pages and APIs on one origin), required
//   EXPIRY_BASE_URL  a site whose orders expire within a minute (started with
//                    e.g. ORDER_EXPIRATION_SECONDS=5); default BASE_URL
//   SCENARIOS        comma-separated: purchase, market, expiry (default: all)
//   SCREENSHOT_DIR   where each step's screenshot goes
//   CHROMIUM         the browser binary, default /usr/bin/chromium
//
// Exits non-zero, naming the step, when anything is not as expected.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = required('BASE_URL').replace(/\/+$/, '');
const EXPIRY_BASE_URL = (process.env.EXPIRY_BASE_URL || BASE_URL).replace(/\/+$/, '');
// A site whose access tokens live a few seconds (JWT_TTL_SECONDS), for the session scenario.
const SESSION_BASE_URL = (process.env.SESSION_BASE_URL || '').replace(/\/+$/, '');
const SESSION_WAIT_MS = Number(process.env.SESSION_WAIT_MS || 6000);
const DEFAULT_SCENARIOS = SESSION_BASE_URL ? 'purchase,market,expiry,session' : 'purchase,market,expiry';
const SCENARIOS = (process.env.SCENARIOS || DEFAULT_SCENARIOS).split(',').map((s) => s.trim()).filter(Boolean);
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || path.resolve('target/browser-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Set when the site writes its mails to MAIL_DIR and shows them at /dev/mail (scripts/e2e).
const MAIL_PAGE = process.env.MAIL_PAGE === '1';
const STEP_TIMEOUT_MS = 15_000;

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (the base URL of a running buytickets site)`);
    process.exit(2);
  }
  return value;
}

function unique(name) {
  return `${name}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}@example.com`;
}

/** A fresh browser: its own profile directory, so no state leaks between runs. */
async function openBrowser() {
  const profile = mkdtempSync(path.join(tmpdir(), 'buytickets-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 390, height: 844 }, // a phone: the pages must work there
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return {
    page,
    errors,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

let shot = 0;
async function screenshot(page, scenario, name) {
  shot += 1;
  const file = path.join(SCREENSHOT_DIR, `${scenario}-${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`  screenshot ${file}`);
}

async function step(name, fn) {
  process.stdout.write(`- ${name}\n`);
  try {
    await fn();
  } catch (e) {
    e.message = `step "${name}" failed: ${e.message}`;
    throw e;
  }
}

async function signUp(page, base, email) {
  await page.goto(`${base}/auth/signup`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL(`${base}/`);
  await page.getByText(`Signed in as ${email}`).waitFor();
}

async function sellTicket(page, base, title, price) {
  await page.getByRole('link', { name: 'Sell a ticket' }).first().click();
  await page.waitForURL(`${base}/tickets/new`);
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Price (USD)').fill(price);
  await page.getByRole('button', { name: 'List ticket' }).click();
  await page.waitForURL(/\/tickets\/[0-9a-f-]{36}$/);
  await page.getByRole('heading', { name: title }).waitFor();
  return page.url();
}

async function signOut(page, base) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${base}/`);
  await page.getByRole('link', { name: 'Sign in' }).waitFor();
}

/** Seller lists a ticket, buyer reserves it and lands on the order page. */
async function reserve(scenario, page, base, title) {
  let ticketUrl;
  const buyer = unique('buyer');
  await step(`${scenario}: a seller signs up`, async () => {
    await signUp(page, base, unique('seller'));
    await screenshot(page, scenario, 'seller-signed-up');
  });
  await step(`${scenario}: the seller lists a ticket`, async () => {
    ticketUrl = await sellTicket(page, base, title, '42.50');
    await page.getByText('$42.50').first().waitFor();
    await screenshot(page, scenario, 'ticket-listed');
    await signOut(page, base);
  });
  await step(`${scenario}: a buyer signs up and finds the ticket on the home page`, async () => {
    await signUp(page, base, buyer);
    await page.getByRole('link', { name: new RegExp(title) }).click();
    await page.waitForURL(ticketUrl);
    await screenshot(page, scenario, 'ticket-page');
  });
  await step(`${scenario}: the buyer purchases it`, async () => {
    await page.getByRole('button', { name: 'Purchase' }).click();
    await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/);
    await page.getByText('Time left to pay').waitFor();
    await screenshot(page, scenario, 'order-page');
  });
  return buyer;
}

/** The buyer's mail `subject` is on the development mail page and links to `link`. */
async function mailArrived(page, buyer, subject, link) {
  await page.goto(`${BASE_URL}/dev/mail`);
  const row = page.getByRole('row', { name: new RegExp(`${buyer}.*${subject}`) });
  for (let i = 0; i < 50 && (await row.count()) === 0; i++) {
    await page.waitForTimeout(200);
    await page.reload();
  }
  await row.getByRole('link', { name: subject }).click();
  await page.locator(`a[data-mail-link][href="${link}"]`).waitFor();
}

async function purchaseScenario() {
  const { page, errors, close } = await openBrowser();
  try {
    const title = `Concert ${Date.now().toString(36)}`;
    const buyer = await reserve('purchase', page, BASE_URL, title);
    const orderUrl = page.url();
    await step('purchase: the countdown runs', async () => {
      const clock = page.locator('[data-countdown-clock]');
      const first = await clock.textContent();
      assert.match(first, /^\d+:\d\d(:\d\d)?$/);
      await page.waitForFunction(
        (before) => document.querySelector('[data-countdown-clock]').textContent !== before,
        first,
        { timeout: 5000 },
      );
    });
    await step('purchase: a declined card shows the error and keeps the form', async () => {
      await page.getByLabel(/Declined card/).check();
      await page.getByRole('button', { name: /^Pay / }).click();
      await page.getByText('Your card was declined.').waitFor();
      assert.equal(await page.getByLabel(/Declined card/).isChecked(), true);
      await page.getByRole('button', { name: /^Pay / }).waitFor();
      await screenshot(page, 'purchase', 'card-declined');
    });
    await step('purchase: paying with the test Visa card completes the order', async () => {
      await page.getByLabel(/Visa/).check();
      await page.getByRole('button', { name: /^Pay / }).click();
      await page.getByText('Payment received. Your order is complete.').waitFor();
      assert.equal(await page.getByRole('button', { name: /^Pay / }).count(), 0);
      await screenshot(page, 'purchase', 'order-complete');
    });
    await step('purchase: my orders shows it complete', async () => {
      await page.getByRole('link', { name: 'My orders', exact: true }).click();
      const row = page.getByRole('row', { name: new RegExp(title) });
      await row.getByText('Complete').waitFor();
      await screenshot(page, 'purchase', 'my-orders');
    });
    if (MAIL_PAGE) {
      await step('purchase: the buyer got "reservation confirmed" and "payment received" mails', async () => {
        // The site runs with PUBLIC_URL = BASE_URL, so the mails link to the order page itself.
        await mailArrived(page, buyer, `Reservation confirmed: ${title}`, orderUrl);
        await screenshot(page, 'purchase', 'mail-confirmed');
        await mailArrived(page, buyer, `Payment received: ${title}`, orderUrl);
      });
    }
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await close();
  }
}

async function expiryScenario() {
  const { page, errors, close } = await openBrowser();
  try {
    await reserve('expiry', page, EXPIRY_BASE_URL, `Matinee ${Date.now().toString(36)}`);
    await step('expiry: the reservation is short (the server runs with a short ORDER_EXPIRATION_SECONDS)', async () => {
      const left = Number(await page.locator('[data-countdown]').getAttribute('data-seconds-left'));
      assert.ok(
        left <= 60,
        `the reservation lasts ${left} s; start the server of EXPIRY_BASE_URL with e.g. ORDER_EXPIRATION_SECONDS=5`,
      );
    });
    await step('expiry: at zero the page says the reservation expired', async () => {
      await page.getByText('This reservation expired.').waitFor({ state: 'visible', timeout: 70_000 });
      assert.equal(await page.getByRole('button', { name: /^Pay / }).isVisible(), false);
      await screenshot(page, 'expiry', 'expired-live');
    });
    await step('expiry: reloaded, the server says so too', async () => {
      await page.reload();
      await page.getByText('This reservation expired.').waitFor();
      assert.equal(await page.getByRole('button', { name: /^Pay / }).count(), 0);
      await screenshot(page, 'expiry', 'expired-reloaded');
    });
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await close();
  }
}

async function signIn(page, base, email) {
  await page.goto(`${base}/auth/signin`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/`);
  await page.getByText(`Signed in as ${email}`).waitFor();
}

/** List with event details → search finds it → buy → the seller's dashboard shows it sold. */
async function marketScenario() {
  const { page, errors, close } = await openBrowser();
  const base = BASE_URL;
  const event = `Tosca${Date.now().toString(36)}`;
  const seller = unique('seller');
  try {
    await step('market: a seller lists a ticket with its event details', async () => {
      await signUp(page, base, seller);
      await page.getByRole('link', { name: 'Sell a ticket' }).first().click();
      await page.waitForURL(`${base}/tickets/new`);
      await page.getByLabel('Title').fill('Two in the stalls');
      await page.getByLabel('Price (USD)').fill('80');
      await page.getByLabel('Event', { exact: true }).fill(event);
      await page.getByLabel('Venue').fill('La Scala');
      await page.getByLabel('City').fill('Milan');
      await page.getByLabel('Date and time (UTC)').fill('2099-06-01T20:00');
      await page.getByLabel('Section').fill('Stalls');
      await page.getByLabel('Row').fill('F');
      await page.getByLabel('Seat', { exact: true }).fill('12');
      await page.getByRole('button', { name: 'List ticket' }).click();
      await page.waitForURL(/\/tickets\/[0-9a-f-]{36}$/);
      await page.getByText('La Scala, Milan').waitFor();
      await page.getByText('Mon 1 Jun 2099, 20:00 UTC').waitFor();
      await screenshot(page, 'market', 'listed-with-details');
      await signOut(page, base);
    });
    await step('market: a buyer searches for the event and finds it', async () => {
      await signUp(page, base, unique('buyer'));
      await page.getByRole('searchbox', { name: 'Search' }).fill(event.toLowerCase());
      await page.getByRole('button', { name: 'Search' }).click();
      await page.waitForURL(new RegExp(`q=${event.toLowerCase()}`));
      const results = page.locator('.ticket-card');
      await results.first().waitFor();
      assert.equal(await results.count(), 1, 'one ticket matches');
      await page.getByText(event).waitFor();
      await screenshot(page, 'market', 'search-found');
    });
    await step('market: the buyer buys it', async () => {
      await page.getByRole('link', { name: new RegExp('Two in the stalls') }).click();
      await page.getByRole('button', { name: 'Purchase' }).click();
      await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/);
      await page.getByLabel(/Visa/).check();
      await page.getByRole('button', { name: /^Pay / }).click();
      await page.getByText('Payment received. Your order is complete.').waitFor();
      await signOut(page, base);
    });
    await step('market: the seller\'s dashboard shows it sold and the amount', async () => {
      await signIn(page, base, seller);
      // The sale reaches the tickets service through events: reload until it has.
      const deadline = Date.now() + STEP_TIMEOUT_MS;
      for (;;) {
        await page.goto(`${base}/tickets/mine`);
        if ((await page.getByText(/Sold on .* for \$80\.00/).count()) > 0) break;
        assert.ok(Date.now() < deadline, 'the dashboard never showed the sale');
        await page.waitForTimeout(500);
      }
      assert.equal((await page.locator('#total-sold').textContent()).trim(), '1');
      assert.equal((await page.locator('#total-earned').textContent()).trim(), '$80.00');
      const row = page.getByRole('row', { name: /Two in the stalls/ });
      assert.equal(await row.getByRole('link', { name: 'Edit' }).count(), 0, 'a sold ticket has no edit link');
      await screenshot(page, 'market', 'dashboard-sold');
    });
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await close();
  }
}

/** A buyer who keeps the site open past the access token's lifetime stays signed in and buys. */
async function sessionScenario() {
  assert.ok(SESSION_BASE_URL, 'set SESSION_BASE_URL to a site started with a short JWT_TTL_SECONDS');
  const base = SESSION_BASE_URL;
  const { page, errors, close } = await openBrowser();
  try {
    const title = `Late show ${Date.now().toString(36)}`;
    const buyer = unique('buyer');
    let ticketUrl;
    await step('session: a seller lists a ticket', async () => {
      await signUp(page, base, unique('seller'));
      ticketUrl = await sellTicket(page, base, title, '20');
      await signOut(page, base);
    });
    await step('session: a buyer signs up', async () => {
      await signUp(page, base, buyer);
    });
    await step(`session: the buyer leaves the site open ${SESSION_WAIT_MS} ms, past the access token's lifetime`, async () => {
      await page.waitForTimeout(SESSION_WAIT_MS);
    });
    await step('session: the home page still shows the buyer signed in (the session was renewed)', async () => {
      await page.goto(`${base}/`);
      await page.waitForURL(`${base}/`);
      await page.getByText(`Signed in as ${buyer}`).waitFor();
      await screenshot(page, 'session', 'still-signed-in');
    });
    await step('session: the buyer still buys the ticket', async () => {
      await page.getByRole('link', { name: new RegExp(title) }).click();
      await page.waitForURL(ticketUrl);
      await page.getByRole('button', { name: 'Purchase' }).click();
      await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/);
      await page.getByText('Time left to pay').waitFor();
      await screenshot(page, 'session', 'order-page');
    });
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await close();
  }
}

const ALL = { purchase: purchaseScenario, market: marketScenario, expiry: expiryScenario, session: sessionScenario };

mkdirSync(SCREENSHOT_DIR, { recursive: true });
let failed = false;
for (const name of SCENARIOS) {
  const scenario = ALL[name];
  if (!scenario) {
    console.error(`unknown scenario ${name}; known: ${Object.keys(ALL).join(', ')}`);
    process.exit(2);
  }
  console.log(`scenario ${name}`);
  shot = 0;
  try {
    await scenario();
    console.log(`scenario ${name}: ok`);
  } catch (e) {
    failed = true;
    console.error(`scenario ${name}: FAILED\n${e.stack || e}`);
  }
}
process.exit(failed ? 1 : 0);
