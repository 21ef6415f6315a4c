// Shared helpers for the end-to-end tests: Debian's Chromium driven by playwright-core, an API
// client (Bearer JWT) for fixtures and for checking what the UI did, and screenshots.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID, randomInt } from 'node:crypto';

export const BASE = process.env.BASE_URL || 'http://127.0.0.1:18080';
export const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
mkdirSync(SHOTS, { recursive: true });

export const ADMIN = { email: process.env.ADMIN_EMAIL || 'admin@till.local', password: process.env.ADMIN_PASSWORD || 'till-admin-pass' };

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/** A fresh Chromium. Playwright gives every launch a new, empty user-data-dir of its own. */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    args: ARGS,
    headless: true,
  });
  return {
    browser,
    /** A new isolated context (own cookies/storage) at a given viewport. */
    async context(viewport = { width: 1024, height: 768 }) {
      const ctx = await browser.newContext({ viewport, baseURL: BASE });
      ctx.setDefaultTimeout(10000);
      return ctx;
    },
    async close() {
      await browser.close().catch(() => {});
    },
  };
}

/** Collects console errors and failed requests so a test can assert the page stayed clean. */
export function watch(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // The sign-in check answers 401 before anyone has signed in: expected, and logged by Chromium.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  return errors;
}

export async function shot(page, name, opts = {}) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: !!opts.fullPage });
}

/** Signs in through a page's own sign-in form. */
export async function signIn(page, email, password) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

// ---- API ----
export class Api {
  constructor(token) { this.token = token; }

  static async login(email, password) {
    const r = await call('POST', '/auth/login', { body: { email, password } });
    return new Api(r.access_token);
  }

  req(method, path, opts = {}) { return call(method, path, { ...opts, token: this.token }); }
  get(path) { return this.req('GET', path); }
  post(path, body, opts = {}) { return this.req('POST', path, { ...opts, body }); }
  patch(path, body, opts = {}) { return this.req('PATCH', path, { ...opts, body }); }
}

export async function call(method, path, { body, token, idempotencyKey, ifMatch } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  if (ifMatch !== undefined) headers['If-Match'] = `"${ifMatch}"`;
  const r = await fetch(`${BASE}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const e = new Error(`${method} ${path} → ${r.status} ${text}`);
    e.status = r.status;
    e.data = data;
    throw e;
  }
  return data;
}

export const key = () => randomUUID();

/** A unique suffix so tests never collide with each other or the demo data. */
export const uniq = () => randomUUID().slice(0, 8);

/** Creates a product with stock through the API (as a manager or admin). */
export async function makeProduct(api, { name, price_cents, tax_rate_bp = 0, stock = 50, barcode, category_id } = {}) {
  const u = uniq();
  const p = await api.post('/products', {
    sku: `E2E-${u}`,
    barcode: barcode || `29${randomInt(1e10, 1e11)}`, // 13 digits, random: tests run side by side
    name: name || `E2E Product ${u}`,
    price_cents,
    tax_rate_bp,
    track_stock: true,
    low_stock_threshold: 2,
    ...(category_id ? { category_id } : {}),
  });
  if (stock) {
    const r = await api.post('/inventory/adjustments', { product_id: p.id, delta: stock, reason: 'received' });
    return r.product;
  }
  return p;
}

/** Polls fn until it returns a truthy value (or throws after timeout ms). */
export async function until(fn, timeout = 10000, every = 200) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}
