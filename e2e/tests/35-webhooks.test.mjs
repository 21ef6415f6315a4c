// Back office, webhooks: an admin adds an endpoint (the secret is shown once), sends a test ping
// that a real local receiver gets with a signature that verifies with that secret, sees the
// delivery succeed, and rotates the secret.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import { launch, watch, shot, signIn, ADMIN, until } from '../lib.mjs';

let b;
let receiver;
const got = [];

before(async () => {
  b = await launch();
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
});
after(async () => { await b.close(); receiver.close(); });

function verifies(header, secret, body) {
  const parts = header.split(',').map((p) => p.split('='));
  const t = parts.find(([k]) => k === 't')[1];
  const want = createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  return parts.some(([k, v]) => k === 'v1' && v === want);
}

test('an admin adds a webhook, pings it, sees the delivery and rotates the secret', async () => {
  const url = `http://127.0.0.1:${receiver.address().port}/till`;
  const ctx = await b.context({ width: 1200, height: 800 });
  const page = await ctx.newPage();
  const errors = watch(page);
  await page.goto('/admin/#/webhooks');
  await signIn(page, ADMIN.email, ADMIN.password);
  await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
  await page.getByLabel('URL').fill(url);
  await page.getByLabel('Description').fill('Accounting');
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  const secretInput = page.getByRole('textbox', { name: 'Signing secret' });
  await secretInput.waitFor();
  const secret = await secretInput.inputValue();
  assert.match(secret, /^whsec_[0-9a-f]{64}$/);
  await shot(page, 'admin-webhook-secret');
  await page.getByRole('button', { name: 'Close' }).click();

  await page.getByRole('link', { name: url }).click();
  await page.getByRole('button', { name: 'Send test ping' }).click();
  await until(async () => got.length > 0, 15000, 200);
  const ping = got[0];
  assert.equal(ping.headers['till-event-type'], 'ping');
  assert.ok(verifies(ping.headers['till-signature'], secret, ping.body), 'the signature verifies with the shown secret');
  assert.equal(JSON.parse(ping.body).id, ping.headers['till-event-id']);

  await until(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    return (await page.locator('#deliveries tbody tr[data-event="ping"] .pill').first().innerText().catch(() => '')) === 'succeeded';
  }, 10000, 300);
  await page.locator('#deliveries tbody tr[data-event="ping"] button.linklike').first().click();
  await page.locator('#attempts tbody tr').first().waitFor();
  assert.match(await page.locator('#attempts tbody tr').first().innerText(), /200/);
  await shot(page, 'admin-webhook-deliveries');
  await page.getByRole('button', { name: 'Close' }).click();

  await page.getByRole('button', { name: 'Rotate secret' }).click();
  const rotated = await page.getByRole('textbox', { name: 'Signing secret' }).inputValue();
  assert.notEqual(rotated, secret);
  await page.getByRole('button', { name: 'Close' }).click();
  await page.getByText('The previous secret also signs until').waitFor();
  assert.deepEqual(errors, []);
  await ctx.close();
});
