// Online payment: a customer's checkout creates a payment intent and waits for the payment
// provider; in development the "Simulate provider" button plays the provider (the server signs the
// callback, the browser never sees the secret) and the order shows as paid. And a cashier who tries
// to cancel a paid order on the board is told why not.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, watch, shot, signIn, Api, ADMIN, call, key, makeProduct, until, uniq } from '../lib.mjs';

const CASHIER = { email: 'cashier@till.local', password: 'cashier-pass-1' };
let b;
let admin;

before(async () => {
  b = await launch();
  admin = await Api.login(ADMIN.email, ADMIN.password);
});
after(async () => { await b.close(); });

test('checkout waits for the payment provider, and the simulated provider pays the order', async () => {
  const u = uniq();
  const email = `pat-${u}@example.com`;
  await call('POST', '/auth/register', { body: { email, password: 'pat-pass-1234', name: `Pat ${u}` } });
  const p = await makeProduct(admin, { name: `Olive Oil ${u}`, price_cents: 1250, tax_rate_bp: 0 });

  const ctx = await b.context({ width: 390, height: 844 });
  const shop = await ctx.newPage();
  const errors = watch(shop);
  await shop.goto(`/#/p/${p.id}`);
  await shop.locator('#add').click();
  await shop.goto('/#/checkout');
  await shop.getByRole('heading', { name: 'Sign in' }).waitFor();
  await signIn(shop, email, 'pat-pass-1234');
  await shop.locator('#place-order').click();

  // The order is placed and its payment intent is waiting for the provider.
  await shop.locator('#order-status').waitFor();
  assert.equal(await shop.locator('#payment-status').innerText(), 'Awaiting payment');
  const number = (await shop.getByRole('heading', { level: 1 }).innerText()).replace('Order #', '');
  const customer = await Api.login(email, 'pat-pass-1234');
  const [order] = (await customer.get('/orders')).items;
  assert.equal(order.number, number);
  assert.equal(order.paid_cents, 0, 'nothing is paid before the provider confirms');
  await shot(shop, 'shop-awaiting-payment');

  await shop.locator('#simulate-payment').click();
  await until(async () => (await shop.locator('#payment-status').innerText()) === 'Paid');
  await shot(shop, 'shop-paid');
  const paid = await customer.get(`/orders/${order.id}`);
  assert.equal(paid.payment_status, 'paid');
  assert.equal(paid.paid_cents, 1250);
  assert.deepEqual(paid.payments.map((x) => [x.method, x.amount_cents]), [['card', 1250]]);
  // A paid order offers neither payment nor cancelling any more.
  assert.equal(await shop.locator('#simulate-payment').count(), 0);
  assert.equal(await shop.locator('#cancel-order').count(), 0);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a cashier cannot cancel a paid order from the board and sees why', async () => {
  const p = await makeProduct(admin, { name: `Gift Box ${uniq()}`, price_cents: 2000 });
  const cashier = await Api.login(CASHIER.email, CASHIER.password);
  const o = await cashier.post('/orders', { fulfilment: 'pickup', lines: [{ product_id: p.id, quantity: 1 }] },
    { idempotencyKey: key() });
  await cashier.post(`/orders/${o.id}/payments`, { method: 'card', amount_cents: 2000 }, { idempotencyKey: key() });

  const ctx = await b.context({ width: 1024, height: 768 });
  const board = await ctx.newPage();
  await board.goto('/board/');
  await signIn(board, CASHIER.email, CASHIER.password);
  await until(async () => (await board.locator('#live').innerText()) === 'Live');
  const card = board.locator(`#col-pending [data-number="${o.number}"]`);
  await card.waitFor();
  await card.getByRole('button', { name: /^Cancel/ }).click();
  await board.locator('#confirm-cancel').click();
  const refusal = board.locator('#toasts').getByText(`Order #${o.number}: This order still holds money; a manager must refund it before it can be cancelled. ($20.00 to refund)`);
  await refusal.waitFor();
  await shot(board, 'board-cancel-refused');
  assert.equal((await cashier.get(`/orders/${o.id}`)).status, 'pending');
  await card.waitFor(); // still on the board
  await ctx.close();
});
