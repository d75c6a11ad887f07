// The user interfaces in a real browser (Debian's Chromium, driven by playwright-core), against a
// running system (scripts/check-browser starts an isolated one):
//
//   1. command-api's Swagger UI: Authorize with the token, Try it out on POST /customers, 201.
//   2. query-api's /dashboard: orders placed through the API move its counts, events and chart.
//   3. A saga event parked as a dead letter shows on the dashboard with its error; the retry
//      button says so when the operator token is missing or wrong, and retries with the right one.
//
// Screenshots of each step go to $BROWSER_ARTIFACTS. Every wait has a deadline; any failed
// expectation, page error or Content-Security-Policy violation fails the test.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

function setting(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (scripts/check-browser sets it)`);
  return value;
}

const commandUrl = setting('SYSTEM_COMMAND_URL');
const queryUrl = setting('SYSTEM_QUERY_URL');
const token = setting('SYSTEM_TOKEN');
const operatorToken = setting('SYSTEM_OPERATOR_TOKEN');
const databaseUrl = setting('SYSTEM_DATABASE_URL');
const artifacts = setting('BROWSER_ARTIFACTS');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 30_000;

mkdirSync(artifacts, { recursive: true });
const step = (text) => console.error(`--> ${text}`);
function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}

// --- the API, as a client would call it -----------------------------------------------------

async function command(path, body) {
  const response = await fetch(`${commandUrl}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  expect(response.ok, `${path} to succeed, got ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

// Appends one event straight to the log (as a partial restore might leave it), for what no
// command can produce: an order for a product the store has never heard of.
function appendEvent(streamId, streamType, eventType, data) {
  execFileSync('psql', [databaseUrl, '-X', '-q', '-v', 'ON_ERROR_STOP=1',
    '-c', `INSERT INTO events (stream_id, stream_type, stream_version, event_type, schema_version, data)
           VALUES ('${streamId}', '${streamType}', 1, '${eventType}', 1, '${JSON.stringify(data)}')`,
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
}

// --- the browser ----------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
context.setDefaultTimeout(WAIT_MS);

function watch(page, name) {
  page.on('pageerror', (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on('console', (message) => {
    // Chromium logs every refused request; the 401 of the wrong operator token is provoked.
    const provoked = message.text().includes('the server responded with a status of 401');
    if (message.type() === 'error' && !provoked) problems.push(`${name}: console error: ${message.text()}`);
  });
  return page;
}

async function textOf(page, selector) {
  return (await page.locator(selector).textContent()).trim();
}

async function waitForText(page, selector, predicate, what) {
  const deadline = Date.now() + WAIT_MS;
  let last = '';
  while (Date.now() < deadline) {
    last = await textOf(page, selector);
    if (predicate(last)) return last;
    await page.waitForTimeout(100);
  }
  throw new Error(`expected ${what}; ${selector} still says ${JSON.stringify(last)}`);
}

const count = (text) => Number(text.replaceAll(',', ''));

try {
  // --- 1. Swagger UI ------------------------------------------------------------------------
  step(`Swagger UI at ${commandUrl}/swagger-ui/`);
  const swagger = watch(await context.newPage(), 'swagger-ui');
  await swagger.goto(`${commandUrl}/swagger-ui/`);
  await swagger.locator('.scheme-container button.authorize').click();
  const dialog = swagger.locator('.dialog-ux');
  await dialog.locator('input').first().fill(token);
  await dialog.locator('.auth-btn-wrapper button.authorize').click();
  await dialog.locator('button.btn-done').click();
  expect(await swagger.locator('.scheme-container button.authorize.locked').count() === 1,
    'the Authorize button to show it holds a token');

  const operation = swagger.locator('#operations-customers-register_customer');
  await operation.locator('.opblock-summary-control').click();
  await operation.locator('button.try-out__btn').click();
  const name = `Browser ${randomUUID().slice(0, 8)}`;
  await operation.locator('textarea.body-param__text')
    .fill(JSON.stringify({ name, credit_limit_cents: 250_000 }, null, 2));
  await operation.locator('button.execute').click();
  const status = operation.locator('.live-responses-table tr.response .response-col_status').first();
  await status.waitFor();
  expect((await status.textContent()).trim() === '201', `Try it out to answer 201, got ${await status.textContent()}`);
  const responseBody = await operation.locator('.live-responses-table tr.response .response-col_description pre').first().textContent();
  const customer = JSON.parse(responseBody.trim());
  expect(customer.version === 1 && customer.position > 0, `a created customer, got ${responseBody}`);
  await operation.locator('.live-responses-table').scrollIntoViewIfNeeded();
  await swagger.screenshot({ path: join(artifacts, 'swagger-ui-post-customers-201.png') });
  step(`POST /customers answered 201 in Swagger UI: customer ${customer.id}`);

  // --- 2. The dashboard ---------------------------------------------------------------------
  step(`dashboard at ${queryUrl}/dashboard`);
  const dashboard = watch(await context.newPage(), 'dashboard');
  await dashboard.goto(`${queryUrl}/dashboard`);
  await waitForText(dashboard, '#connection', (text) => text === 'live', 'the dashboard to be live');
  const ordersBefore = count(await textOf(dashboard, '#orders-total'));
  const approvedBefore = count(await textOf(dashboard, '#count-approved'));

  const tea = await command('/products', { sku: `TEA-${randomUUID().slice(0, 8)}`, name: 'Green tea', price_cents: 450, stock: 20 });
  const poor = await command('/customers', { name: 'Short of credit', credit_limit_cents: 500 });
  const lines = (quantity) => [{ product_id: tea.id, quantity }];
  const placed = [];
  for (let i = 0; i < 5; i++) placed.push(await command('/orders', { customer_id: customer.id, lines: lines(1) }));
  placed.push(await command('/orders', { customer_id: customer.id, lines: lines(50) })); // insufficient stock
  placed.push(await command('/orders', { customer_id: poor.id, lines: lines(2) })); // credit limit exceeded
  step(`placed ${placed.length} orders through the API`);

  await waitForText(dashboard, '#orders-total', (text) => count(text) === ordersBefore + placed.length,
    `the order count to move from ${ordersBefore} to ${ordersBefore + placed.length}`);
  await waitForText(dashboard, '#count-pending', (text) => count(text) === 0, 'every order to be decided');
  await waitForText(dashboard, '#count-approved', (text) => count(text) === approvedBefore + 5, 'five more approved orders');
  expect(count(await textOf(dashboard, '#count-insufficient_stock')) >= 1, 'an order rejected for stock');
  expect(count(await textOf(dashboard, '#count-credit_limit_exceeded')) >= 1, 'an order rejected for credit');
  const newest = await dashboard.locator('#recent-events tbody tr').allTextContents();
  expect(newest.some((row) => row.includes('OrderApproved')) && newest.some((row) => row.includes('OrderRejected')),
    `the newest events to show the saga's decisions, got ${newest.slice(0, 5).join(' | ')}`);
  expect(await dashboard.locator('#rate-chart rect.bar').count() > 0, 'the event-rate chart to draw bars');
  const subscriptions = await dashboard.locator('#subscriptions tbody tr').allTextContents();
  expect(subscriptions.length >= 5 && subscriptions.some((row) => row.includes('order_list')),
    `every subscription listed, got ${subscriptions.join(' | ')}`);
  await waitForText(dashboard, '#subscriptions tbody', (text) => !text.includes('catching up') && !text.includes('failing'),
    'every subscription to be live');
  await waitForText(dashboard, '#admission', (text) => text.startsWith('admission: accepting orders') || text.includes('not set'),
    'the admission line to say orders are accepted');
  await dashboard.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
  step('the dashboard counted every order, its outcome and its events');

  // --- 3. A dead letter, retried from the dashboard ------------------------------------------
  const [order, missingProduct] = [randomUUID(), randomUUID()];
  appendEvent(order, 'order', 'OrderPlaced', {
    customer_id: customer.id,
    lines: [{ product_id: missingProduct, quantity: 1, unit_price_cents: 100 }],
    total_cents: 100,
  });
  step(`appended an order (${order}) for a product the store does not know; waiting for the saga to park it`);
  await waitForText(dashboard, '#dead-letter-count', (text) => text === '1', 'one dead letter');
  const letter = await textOf(dashboard, '#dead-letters tbody tr');
  expect(letter.includes('OrderPlaced') && /product/i.test(letter), `the dead letter with its error, got ${letter}`);

  const message = '#retry-message';
  await dashboard.locator('#operator-token').fill('');
  await dashboard.locator('#retry-button').click();
  await waitForText(dashboard, message, (text) => text.includes('Enter the operator token'), 'a request for the token');
  await dashboard.locator('#operator-token').fill('not-the-operator-token');
  await dashboard.locator('#retry-button').click();
  await waitForText(dashboard, message, (text) => text.includes('refused the operator token (401)'), 'the wrong token to be refused');
  expect(count(await textOf(dashboard, '#dead-letter-count')) === 1, 'the dead letter still parked after a refused retry');
  await dashboard.screenshot({ path: join(artifacts, 'dashboard-dead-letter.png'), fullPage: true });

  appendEvent(missingProduct, 'product', 'ProductAdded', { sku: `LATE-${randomUUID().slice(0, 8)}`, name: 'Late', price_cents: 100, stock: 5 });
  step('added the missing product; retrying with the operator token');
  await dashboard.locator('#operator-token').fill(operatorToken);
  await dashboard.locator('#retry-button').click();
  await waitForText(dashboard, message, (text) => text.includes('1 processed, none still failing'), 'the retry to process the dead letter');
  await waitForText(dashboard, '#dead-letter-count', (text) => text === '0', 'no dead letter left');
  await waitForText(dashboard, '#count-approved', (text) => count(text) === approvedBefore + 6, 'the retried order approved');
  expect(await dashboard.locator('#no-dead-letters').isVisible(), 'the "no dead letters" note');
  await dashboard.screenshot({ path: join(artifacts, 'dashboard-after-retry.png'), fullPage: true });
  step('the retry button processed the dead letter; the order was approved');

  expect(problems.length === 0, `no page errors, console errors or CSP violations, got:\n  ${problems.join('\n  ')}`);
} catch (error) {
  for (const page of context.pages()) {
    const name = new URL(page.url()).pathname.replaceAll('/', '_') || 'page';
    await page.screenshot({ path: join(artifacts, `failed${name}.png`), fullPage: true }).catch(() => {});
  }
  throw error;
} finally {
  await browser.close();
}
console.error(`browser test passed; screenshots in ${artifacts}`);
