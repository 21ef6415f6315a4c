// A customer registers, shops and places a pickup order; it appears on the staff board in another
// browser context without a reload, moves when staff click "Confirmed", and the customer's order
// page follows along live.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, watch, shot, signIn, Api, ADMIN, makeProduct, until, uniq } from '../lib.mjs';

const STAFF = { email: 'staff@till.local', password: 'staff-pass-1' };
let b;
let admin;

before(async () => {
  b = await launch();
  admin = await Api.login(ADMIN.email, ADMIN.password);
});
after(async () => { await b.close(); });

test('a customer order appears on the board live and moves when staff confirm it', async () => {
  const u = uniq();
  const cat = await admin.post('/categories', { name: `Bakery ${u}` });
  const bread = await makeProduct(admin, { name: `Sourdough Loaf ${u}`, price_cents: 650, tax_rate_bp: 0, category_id: cat.id });
  await makeProduct(admin, { name: `Rye Rolls ${u}`, price_cents: 399, tax_rate_bp: 0, category_id: cat.id });

  // Staff open the board first.
  const staffCtx = await b.context({ width: 1024, height: 768 });
  const board = await staffCtx.newPage();
  const boardErrors = watch(board);
  await board.goto('/board/');
  await signIn(board, STAFF.email, STAFF.password);
  await until(async () => (await board.locator('#live').innerText()) === 'Live');
  const navigations = [];
  board.on('framenavigated', (f) => { if (f === board.mainFrame()) navigations.push(f.url()); });
  const pendingBefore = Number(await board.locator('#col-pending .count').innerText());

  // A customer on a phone registers, browses the category and orders for pickup.
  const custCtx = await b.context({ width: 390, height: 844 });
  const shop = await custCtx.newPage();
  const shopErrors = watch(shop);
  await shop.goto('/#/register');
  await shop.getByLabel('Name').fill(`Robin ${u}`);
  await shop.getByLabel('Email').fill(`robin-${u}@example.com`);
  await shop.getByLabel('Password').fill('robin-pass-123');
  await shot(shop, 'shop-register');
  await shop.getByRole('button', { name: 'Create account' }).click();
  await shop.locator('#nav-orders').waitFor();
  await shop.goto(`/#/c/${cat.id}`);
  await shop.locator(`li[data-sku="${bread.sku}"]`).waitFor();
  await shot(shop, 'shop-category');
  await shop.getByRole('link', { name: `Sourdough Loaf ${u}` }).click();
  await shop.locator('#product-price').waitFor();
  await shot(shop, 'shop-product');
  await shop.locator('#qty').fill('2');
  await shop.locator('#add').click();
  await until(async () => (await shop.locator('#cart-count').innerText()) === '2');
  await shop.locator('#nav-cart').click();
  await shop.locator('#cart-total').waitFor();
  assert.equal(await shop.locator('#cart-total').innerText(), '$13.00');
  await shot(shop, 'shop-cart');
  await shop.locator('#checkout').click();
  await shop.locator('#place-order').waitFor();
  await shot(shop, 'shop-checkout');
  await shop.locator('#place-order').click();
  await shop.locator('#order-status').waitFor();
  assert.equal(await shop.locator('#order-status').innerText(), 'New');
  const number = (await shop.getByRole('heading', { level: 1 }).innerText()).replace('Order #', '');
  await shot(shop, 'shop-order-new');

  // It shows up on the board by itself.
  const card = board.locator(`#col-pending [data-number="${number}"]`);
  await card.waitFor({ timeout: 10000 });
  await until(async () => Number(await board.locator('#col-pending .count').innerText()) === pendingBefore + 1);
  // The event moves the card at once; its lines arrive with the full order just after.
  await card.getByText(`2 × Sourdough Loaf ${u}`).waitFor();
  assert.match(await card.innerText(), /Pickup/);
  await shot(board, 'board-new-order');

  // Staff confirm it; the card moves, and the customer sees it without reloading.
  await card.getByRole('button', { name: /^Confirmed/ }).click();
  const moved = board.locator(`#col-confirmed [data-number="${number}"]`);
  await moved.waitFor();
  assert.equal(await board.locator(`#col-pending [data-number="${number}"]`).count(), 0);
  await until(async () => (await shop.locator('#order-status').innerText()) === 'Confirmed', 10000);
  await shot(shop, 'shop-order-confirmed');
  await shot(board, 'board-confirmed');

  // And onwards to ready, as the board allows.
  await moved.getByRole('button', { name: /^Preparing/ }).click();
  await board.locator(`#col-preparing [data-number="${number}"]`).getByRole('button', { name: /^Ready/ }).click();
  const ready = board.locator(`#col-ready [data-number="${number}"]`);
  await ready.waitFor();
  assert.ok(await ready.getByRole('button', { name: /^Completed/ }).isVisible(), 'pickup orders complete from ready');
  await until(async () => (await shop.locator('#order-status').innerText()) === 'Ready', 10000);

  assert.deepEqual(navigations, [], 'the board never reloaded');
  assert.deepEqual(boardErrors, []);
  assert.deepEqual(shopErrors, []);
  await staffCtx.close();
  await custCtx.close();
});

test('the board on a phone scrolls its columns and keeps the buttons large', async () => {
  const ctx = await b.context({ width: 390, height: 844 });
  const page = await ctx.newPage();
  await page.goto('/board/');
  await signIn(page, STAFF.email, STAFF.password);
  await until(async () => (await page.locator('#live').innerText()) === 'Live');
  await page.locator('#col-pending').waitFor();
  const box = await until(() => page.locator('#col-pending').boundingBox());
  assert.ok(box.width >= 240 && box.width <= 390, `column width ${box.width}`);
  await shot(page, 'board-phone');
  await ctx.close();
});

test('a delivery order goes out for delivery and lands in "recently done"', async () => {
  const p = await makeProduct(admin, { name: `Pizza ${uniq()}`, price_cents: 1200 });
  const customer = await Api.login('customer@till.local', 'customer-pass-1');
  const ctx = await b.context({ width: 1024, height: 768 });
  const board = await ctx.newPage();
  const errors = watch(board);
  await board.goto('/board/');
  await signIn(board, STAFF.email, STAFF.password);
  await until(async () => (await board.locator('#live').innerText()) === 'Live');
  const o = await customer.post('/orders', { fulfilment: 'delivery', delivery_address: '12 Harbour Road', lines: [{ product_id: p.id, quantity: 1 }] },
    { idempotencyKey: crypto.randomUUID() });
  const card = (s) => board.locator(`#col-${s} [data-number="${o.number}"]`);
  await card('pending').getByText('Deliver to: 12 Harbour Road').waitFor();
  for (const [from, to] of [['pending', 'Confirmed'], ['confirmed', 'Preparing'], ['preparing', 'Ready'], ['ready', 'Out for delivery']]) {
    await card(from).getByRole('button', { name: new RegExp(`^${to}`) }).click();
  }
  await card('out_for_delivery').waitFor();
  await shot(board, 'board-out-for-delivery');
  await card('out_for_delivery').getByRole('button', { name: /^Delivered/ }).click();
  await board.locator('.done-list').getByText(`#${o.number} Delivered`).waitFor();
  assert.equal((await customer.get(`/orders/${o.id}`)).status, 'delivered');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a category pages with "Load more" without repeating or skipping products', async () => {
  const u = uniq();
  const cat = await admin.post('/categories', { name: `Spices ${u}` });
  await Promise.all(Array.from({ length: 30 }, (_, i) => makeProduct(admin, {
    name: `Spice ${String(i).padStart(2, '0')} ${u}`, price_cents: 100 + i, stock: 0, category_id: cat.id,
  })));
  const ctx = await b.context({ width: 1024, height: 768 });
  const page = await ctx.newPage();
  const errors = watch(page);
  await page.goto(`/#/c/${cat.id}`);
  await page.getByRole('heading', { name: `Spices ${u}` }).waitFor();
  await until(async () => (await page.locator('li.product-tile').count()) === 24);
  await page.locator('#load-more').click();
  await until(async () => (await page.locator('li.product-tile').count()) === 30);
  assert.ok(await page.locator('#load-more').isHidden());
  const names = await page.locator('li.product-tile a.name').allInnerTexts();
  assert.deepEqual(names, Array.from({ length: 30 }, (_, i) => `Spice ${String(i).padStart(2, '0')} ${u}`));
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a delivery checkout asks for the address, then shows it on the order', async () => {
  const p = await makeProduct(admin, { name: `Lasagne ${uniq()}`, price_cents: 1450, tax_rate_bp: 700 });
  const ctx = await b.context({ width: 1024, height: 768 });
  const shop = await ctx.newPage();
  const errors = watch(shop);
  await shop.goto(`/#/p/${p.id}`);
  await shop.locator('#add').click();
  await shop.goto('/#/checkout');
  // Not signed in yet: the shop asks, then comes back to the checkout.
  await shop.getByRole('heading', { name: 'Sign in' }).waitFor();
  await shop.getByLabel('Email').fill('customer@till.local');
  await shop.getByLabel('Password').fill('customer-pass-1');
  await shop.getByRole('button', { name: 'Sign in' }).click();
  await shop.locator('#place-order').waitFor();
  assert.equal(await shop.locator('#checkout-total').innerText(), '$15.52'); // 1450 + round(101.5)
  await shop.getByLabel('Deliver to me').check();
  await shop.locator('#place-order').click();
  await shop.getByRole('alert').getByText('Enter the delivery address.').waitFor();
  await shop.getByLabel('Delivery address').fill('4 Mill Lane, Springfield');
  await shot(shop, 'shop-checkout-delivery');
  await shop.locator('#place-order').click();
  await shop.getByText('Delivery to: 4 Mill Lane, Springfield').waitFor();
  assert.equal(await shop.locator('#cart-count').innerText(), '0');
  await shop.getByRole('link', { name: 'My orders' }).first().click();
  await shop.getByRole('heading', { name: 'My orders' }).waitFor();
  await shot(shop, 'shop-my-orders');
  assert.deepEqual(errors, []);
  await ctx.close();
});
