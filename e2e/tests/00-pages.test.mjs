// Every screen loads cleanly, signs in with the keyboard alone, explains a wrong password in plain
// words, labels every control, and only lets in the roles it is for.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, watch, shot, ADMIN } from '../lib.mjs';

let b;
before(async () => { b = await launch(); });
after(async () => { await b.close(); });

const SCREENS = [
  ['/till/', 'till', 'Sign in to the till'],
  ['/board/', 'board', 'Sign in to the order board'],
  ['/admin/', 'admin', 'Sign in to the back office'],
];

/** Controls without an accessible name (label, aria-label or aria-labelledby). */
async function unlabelled(page) {
  return page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map((el) => el.outerHTML.slice(0, 80)));
}

for (const [path, name, title] of SCREENS) {
  test(`${name}: sign-in form, plain error, keyboard only`, async () => {
    const ctx = await b.context();
    const page = await ctx.newPage();
    const errors = watch(page);
    const resp = await page.goto(path);
    assert.match(resp.headers()['content-security-policy'], /default-src 'self'/);
    await page.getByRole('heading', { name: title }).waitFor();
    assert.deepEqual(await unlabelled(page), []);
    // Email has focus; Tab goes to password, Enter submits.
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-email');
    await page.keyboard.type(ADMIN.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type('not-the-password');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').getByText('Wrong email or password.').waitFor();
    await shot(page, `${name}-login-error`);
    await page.locator('#login-password').fill(ADMIN.password);
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    assert.deepEqual(await unlabelled(page), []);
    assert.deepEqual(errors.filter((e) => !e.includes('status of 401') && !/status of 404/.test(e)), []);
    await ctx.close();
  });
}

test('a customer account cannot open the till', async () => {
  const ctx = await b.context();
  const page = await ctx.newPage();
  await page.goto('/till/');
  await page.getByLabel('Email').fill('customer@till.local');
  await page.getByLabel('Password').fill('customer-pass-1');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').getByText("That account (customer) can't use this screen.").waitFor();
  await ctx.close();
});

test('the shop home page works signed out, on a phone', async () => {
  const ctx = await b.context({ width: 390, height: 844 });
  const page = await ctx.newPage();
  const errors = watch(page);
  await page.goto('/');
  await page.getByRole('heading', { name: 'All products' }).waitFor();
  await page.locator('ul.products:not([aria-busy])').waitFor();
  assert.deepEqual(await unlabelled(page), []);
  await shot(page, 'shop-home-phone');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no sideways scrolling (${width}px)`);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('the shop home page on a 1024×768 tablet', async () => {
  const ctx = await b.context({ width: 1024, height: 768 });
  const page = await ctx.newPage();
  await page.goto('/');
  await page.locator('ul.products:not([aria-busy])').waitFor();
  await shot(page, 'shop-home-tablet');
  await ctx.close();
});
