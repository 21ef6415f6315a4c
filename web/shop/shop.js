// The customer shop: browse by category (cursor paging), search, product pages, a cart kept in
// localStorage, sign-in/register, pickup or delivery checkout paid through a payment intent (card,
// confirmed by the payment provider), and orders whose status updates live.

import {
  api, get, money, statusWord, uuid, login, logout, currentUser, session, setCurrency,
} from '../assets/api.js';
import { priceOrder } from '../assets/pricing.js';
import { pickupPicker } from './pickup.js';
import { LiveFeed } from '../assets/ws.js';
import { h, fill, $, say, errorBox, showError, markFields, field, busy } from '../assets/ui.js';

const main = $('#main');
const CART_KEY = 'shop.cart.v1';
const PAGE = 24;
let user = null;
let feed = null;
let categories = [];
let view = null; // {name, id} of what is on screen, for live updates

// ---- cart ----
function readCart() {
  try { return JSON.parse(localStorage.getItem(CART_KEY) || '[]'); } catch { return []; }
}
function writeCart(c) {
  localStorage.setItem(CART_KEY, JSON.stringify(c));
  cartBadge();
}
function cartBadge() {
  const n = readCart().reduce((a, l) => a + l.quantity, 0);
  $('#cart-count').textContent = String(n);
  $('#nav-cart').setAttribute('aria-label', `Cart, ${n} item${n === 1 ? '' : 's'}`);
}
function addToCart(p, qty = 1) {
  const c = readCart();
  const l = c.find((x) => x.product_id === p.id);
  if (l) l.quantity = Math.min(1000, l.quantity + qty);
  else c.push({ product_id: p.id, quantity: qty, name: p.name, price_cents: p.price_cents, tax_rate_bp: p.tax_rate_bp });
  writeCart(c);
  say(`${p.name} added to your cart.`, 'ok', 2500);
}

// ---- helpers ----
/** The product's first photo (thumb, with the medium variant for wider slots), lazy-loaded;
 *  a coloured tile with initials when it has none. */
function thumb(p, { big = false } = {}) {
  const img = p.images && p.images[0];
  if (img) {
    return h('img.thumb.photo', {
      src: img.urls.thumb,
      srcset: `${img.urls.thumb} 256w, ${img.urls.medium} 800w`,
      sizes: big ? '(max-width: 700px) 100vw, 50vw' : '(max-width: 500px) 50vw, 200px',
      alt: p.name, loading: big ? 'eager' : 'lazy', decoding: 'async',
    });
  }
  let hash = 0;
  for (const ch of p.name) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  const hue = hash % 360;
  const initials = p.name.split(/\s+/).map((w) => (w.match(/[\p{L}\p{N}]/u) || [])[0]).filter(Boolean)
    .slice(0, 2).join('').toUpperCase();
  return h('div.thumb', { 'aria-hidden': 'true', style: { background: `hsl(${hue} 45% 38%)` } }, initials);
}
function priceWithTax(p) {
  return p.tax_rate_bp ? h('small.muted', ` + ${(p.tax_rate_bp / 100).toFixed(2).replace(/\.?0+$/, '')}% tax`) : null;
}
function outOfStock(p) { return p.track_stock && p.stock_on_hand <= 0; }

function setTitle(t) { document.title = t ? `${t} · Till Shop` : 'Till Shop'; }
function go(hash) { if (location.hash === hash) route(); else location.hash = hash; }

// ---- pages ----
async function pageList({ categoryId = null, q = null } = {}) {
  view = { name: 'list' };
  setTitle(q ? `Search: ${q}` : categoryId ? (categories.find((c) => c.id === categoryId)?.name || 'Category') : 'Shop');
  const list = h('ul.products', { 'aria-live': 'polite', 'aria-busy': 'true' });
  const more = h('button#load-more.btn.big', { type: 'button', hidden: true }, 'Load more');
  const heading = q ? `Results for “${q}”` : categoryId ? (categories.find((c) => c.id === categoryId)?.name || 'Products') : 'All products';
  fill(main,
    h('nav.cats', { 'aria-label': 'Categories' },
      h('a', { href: '#/', 'aria-current': !categoryId && !q ? 'page' : null }, 'All'),
      categories.map((c) => h('a', { href: `#/c/${c.id}`, 'aria-current': c.id === categoryId ? 'page' : null }, c.name))),
    h('h1', heading), list, h('div.center', { style: { marginTop: '1rem' } }, more));
  let cursor = null;
  const load = async () => {
    const page = await get('/products', { limit: PAGE, cursor, category_id: categoryId, q });
    for (const p of page.items) list.append(tile(p));
    list.removeAttribute('aria-busy');
    if (!list.children.length) list.replaceWith(h('p.muted', q ? 'Nothing matches that search.' : 'No products here yet.'));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', () => busy(more, () => load().catch((e) => say(e.message, 'error'))));
  await load();
}

function tile(p) {
  const add = h('button.btn.primary', { type: 'button', disabled: outOfStock(p), onclick: () => addToCart(p) },
    outOfStock(p) ? 'Out of stock' : 'Add to cart', h('span.sr-only', `: ${p.name}`));
  return h('li.card.product-tile', { dataset: { sku: p.sku } },
    thumb(p),
    h('a.name', { href: `#/p/${p.id}` }, p.name),
    h('div', h('span.price', money(p.price_cents)), priceWithTax(p)),
    h('div.spacer'), add);
}

async function pageProduct(id) {
  view = { name: 'product', id };
  const p = await get(`/products/${id}`);
  setTitle(p.name);
  const qty = h('input#qty', { type: 'number', min: '1', max: '1000', value: '1', inputMode: 'numeric' });
  const cat = categories.find((c) => c.id === p.category_id);
  fill(main,
    h('p', h('a', { href: cat ? `#/c/${cat.id}` : '#/' }, `← ${cat ? cat.name : 'All products'}`)),
    h('article.product-page.card',
      thumb(p, { big: true }),
      h('div.stack',
        h('h1', p.name),
        h('p.price#product-price', money(p.price_cents)),
        priceWithTax(p),
        p.description ? h('p', p.description) : null,
        h('p.muted', `SKU ${p.sku}`),
        p.track_stock ? h('p', outOfStock(p) ? h('span.pill.bad', 'Out of stock') : h('span.pill.ok', `${p.stock_on_hand} in stock`)) : null,
        h('div.row',
          field('Quantity', qty),
          h('div.field', h('button#add.btn.primary.big', {
            type: 'button', disabled: outOfStock(p),
            onclick: () => {
              const n = Math.max(1, Math.min(1000, Math.floor(Number(qty.value) || 1)));
              addToCart(p, n);
            },
          }, 'Add to cart'))))));
}

async function pageCart() {
  view = { name: 'cart' };
  setTitle('Cart');
  let c = readCart();
  if (!c.length) {
    fill(main, h('h1', 'Your cart'), h('p', 'Your cart is empty. ', h('a', { href: '#/' }, 'Browse products')));
    return;
  }
  // Prices may have changed since the items were added: show today's.
  const fresh = await Promise.all(c.map((l) => get(`/products/${l.product_id}`).catch(() => null)));
  c = c.map((l, i) => (fresh[i] ? { ...l, name: fresh[i].name, price_cents: fresh[i].price_cents, tax_rate_bp: fresh[i].tax_rate_bp, gone: false } : { ...l, gone: true }));
  writeCart(c.map(({ gone, ...l }) => l));
  const live = c.filter((l) => !l.gone);
  const p = priceOrder(live.map((l) => ({ unit_price_cents: l.price_cents, quantity: l.quantity, tax_rate_bp: l.tax_rate_bp })), null);
  const setQty = (id, q) => {
    const cc = readCart();
    const l = cc.find((x) => x.product_id === id);
    if (!l) return;
    if (q < 1) cc.splice(cc.indexOf(l), 1); else l.quantity = Math.min(1000, Math.floor(q));
    writeCart(cc);
    pageCart();
  };
  fill(main, h('h1', 'Your cart'),
    h('div.card.table-wrap', h('table.cart-lines',
      h('thead', h('tr', h('th', 'Item'), h('th.num', 'Price'), h('th', 'Quantity'), h('th.num', 'Amount'), h('th', h('span.sr-only', 'Remove')))),
      h('tbody', c.map((l) => h('tr', { dataset: { product: l.product_id } },
        h('td', l.gone ? h('span', l.name, ' ', h('span.pill.bad', 'No longer available')) : h('a', { href: `#/p/${l.product_id}` }, l.name)),
        h('td.num.unit-price', money(l.price_cents)),
        h('td', h('input.qty', {
          type: 'number', min: '0', max: '1000', value: String(l.quantity), 'aria-label': `Quantity of ${l.name}`,
          onchange: (e) => setQty(l.product_id, Number(e.target.value)),
        })),
        h('td.num', l.gone ? '—' : money(l.price_cents * l.quantity)),
        h('td', h('button.btn.small.ghost', { type: 'button', 'aria-label': `Remove ${l.name}`, onclick: () => setQty(l.product_id, 0) }, '✕'))))))),
    h('div.card', { style: { marginTop: '1rem', maxWidth: '420px', marginLeft: 'auto' } },
      h('dl.totals', { style: { display: 'grid', gridTemplateColumns: '1fr auto', gap: '.3rem' } },
        h('dt', 'Subtotal'), h('dd.num', money(p.subtotal_cents)),
        h('dt', 'Tax'), h('dd.num', money(p.tax_cents)),
        h('dt', h('strong', 'Total')), h('dd.num#cart-total', h('strong', money(p.total_cents)))),
      h('a#checkout.btn.primary.big', { href: '#/checkout', style: { width: '100%' }, role: 'button' }, 'Check out')));
}

async function pageCheckout() {
  view = { name: 'checkout' };
  setTitle('Check out');
  if (!user) { sessionStorage.setItem('shop.after', '#/checkout'); go('#/signin'); return; }
  if (user.role !== 'customer') {
    fill(main, h('h1', 'Check out'), h('p.notice.warn', 'Staff accounts can’t place shop orders. Sign in with a customer account, or use the till.'));
    return;
  }
  const c = readCart();
  if (!c.length) { go('#/cart'); return; }
  const err = errorBox();
  const pickup = h('input', { type: 'radio', name: 'fulfilment', value: 'pickup', checked: true });
  const delivery = h('input', { type: 'radio', name: 'fulfilment', value: 'delivery' });
  const address = h('textarea#delivery_address', { name: 'delivery_address', autocomplete: 'street-address', rows: 3 });
  const addrField = field('Delivery address', address);
  addrField.hidden = true;
  const note = h('textarea#note', { name: 'note', rows: 2, maxLength: 500 });
  const store = await pickupPicker(c);
  const toggle = () => { addrField.hidden = !delivery.checked; address.required = delivery.checked; if (store.el) store.el.hidden = delivery.checked; };
  pickup.addEventListener('change', toggle);
  delivery.addEventListener('change', toggle);
  const place = h('button#place-order.btn.ok.big', { type: 'submit' }, 'Place order');
  const form = h('form.card', {
    style: { maxWidth: '640px' },
    noValidate: true, // our own message, read out, rather than the browser's bubble
    onsubmit: async (e) => {
      e.preventDefault();
      showError(err, null);
      const body = {
        fulfilment: delivery.checked ? 'delivery' : 'pickup',
        lines: readCart().map((l) => ({ product_id: l.product_id, quantity: l.quantity })),
      };
      if (delivery.checked) {
        if (!address.value.trim()) { showError(err, 'Enter the delivery address.'); address.focus(); return; }
        body.delivery_address = address.value.trim();
      }
      if (note.value.trim()) body.note = note.value.trim();
      if (pickup.checked && store.value()) body.location_id = store.value();
      // One key per distinct order: a double click or a retry after a dropped answer places it once.
      const sig = JSON.stringify(body);
      let key = sessionStorage.getItem('shop.checkout.key');
      if (!key || sessionStorage.getItem('shop.checkout.sig') !== sig) {
        key = uuid();
        sessionStorage.setItem('shop.checkout.key', key);
        sessionStorage.setItem('shop.checkout.sig', sig);
      }
      await busy(place, async () => {
        try {
          const order = await api('POST', '/orders', { body, idempotencyKey: key });
          sessionStorage.removeItem('shop.checkout.key');
          sessionStorage.removeItem('shop.checkout.sig');
          writeCart([]);
          // Ask the payment provider for the balance at once; the order page waits for it.
          await startPayment(order).catch(() => {}); // the order page offers it again
          go(`#/orders/${order.id}`);
        } catch (ex) {
          markFields(form, ex);
          if (ex.code === 'insufficient_stock' && ex.details && ex.details.lines) {
            const names = ex.details.lines.map((l) => {
              const it = c.find((x) => x.product_id === l.product_id);
              return `${it ? it.name : 'an item'} (only ${l.available} left)`;
            });
            showError(err, `Sorry, not enough stock: ${names.join(', ')}. Change the quantities in your cart.`);
          } else showError(err, ex);
        }
      });
    },
  },
  h('fieldset', h('legend', 'How do you want it?'),
    h('label.check', pickup, 'Pick up at the shop'),
    h('label.check', delivery, 'Deliver to me')),
  store.el, addrField,
  field('Note for the shop (optional)', note),
  err, place);
  const p = priceOrder(c.map((l) => ({ unit_price_cents: l.price_cents, quantity: l.quantity, tax_rate_bp: l.tax_rate_bp })), null);
  const summary = h('section.card', { style: { maxWidth: '640px', marginBottom: '1rem' }, 'aria-labelledby': 'sum-h' },
    h('h2#sum-h', 'Your order'),
    h('ul', c.map((l) => h('li', `${l.quantity} × ${l.name}`))),
    h('p', 'Total ', h('strong#checkout-total', money(p.total_cents)), h('small.muted', ' incl. tax, confirmed when you place the order')));
  fill(main, h('h1', 'Check out'), h('p', `Signed in as ${user.name}. `, h('a', { href: '#/cart' }, 'Back to cart')), summary, form);
}

const FLOW = {
  pickup: ['pending', 'confirmed', 'preparing', 'ready', 'completed'],
  delivery: ['pending', 'confirmed', 'preparing', 'ready', 'out_for_delivery', 'delivered'],
  in_store: ['pending', 'completed'],
};

async function pageOrder(id) {
  view = { name: 'order', id };
  if (!user) { sessionStorage.setItem('shop.after', `#/orders/${id}`); go('#/signin'); return; }
  const o = await get(`/orders/${id}`);
  if (o.currency) setCurrency(o.currency);
  setTitle(`Order #${o.number}`);
  const flow = FLOW[o.fulfilment] || FLOW.pickup;
  const at = flow.indexOf(o.status);
  const err = errorBox();
  const intent = readIntent(o);
  const payBtn = h('button#pay-card.btn.primary.big', { type: 'button' }, `Pay ${money(o.balance_due_cents)} by card`);
  payBtn.addEventListener('click', () => busy(payBtn, async () => {
    showError(err, null);
    try {
      await startPayment(o);
      pageOrder(id);
    } catch (e) { showError(err, e); }
  }));
  const simulateBtn = h('button#simulate-payment.btn.big', { type: 'button' }, 'Simulate provider');
  simulateBtn.addEventListener('click', () => busy(simulateBtn, async () => {
    showError(err, null);
    try {
      await api('POST', '/dev/payment-provider/simulate', { body: { intent_id: intent.id, outcome: 'succeeded' } });
      say('Payment received. Thank you!', 'ok');
      pageOrder(id);
    } catch (e) { showError(err, e); }
  }));
  const cancelBtn = h('button#cancel-order.btn.danger', { type: 'button' }, 'Cancel order');
  cancelBtn.addEventListener('click', () => busy(cancelBtn, async () => {
    try {
      await api('POST', `/orders/${o.id}/transitions`, { body: { to: 'cancelled' }, ifMatch: o.version });
      pageOrder(id);
    } catch (e) { showError(err, e); }
  }));
  const payable = o.balance_due_cents > 0 && o.status !== 'cancelled' && o.status !== 'delivered';
  const holdsMoney = o.paid_cents > o.refunded_cents;
  let payment = null;
  if (o.balance_due_cents === 0 && o.paid_cents > 0) {
    payment = h('p', 'Payment: ', h('span#payment-status.pill.ok', 'Paid'));
  } else if (payable && intent) {
    payment = h('div.notice.stack',
      h('p', 'Payment: ', h('span#payment-status.pill', 'Awaiting payment'), ' ',
        h('span.muted', `${money(intent.amount_cents)} by card, confirmed by the payment provider.`)),
      (await devMode()) ? h('div.row', simulateBtn, h('small.muted', 'Development only: plays the payment provider.')) : null);
  }
  fill(main,
    h('p', h('a', { href: '#/orders' }, '← My orders')),
    h('article.card.stack', { dataset: { order: o.id } },
      h('h1', `Order #${o.number}`),
      h('p', 'Status: ', h('span#order-status.status-big', { 'aria-live': 'polite' }, statusWord(o.status))),
      o.status === 'cancelled' ? h('p.notice.warn', 'This order was cancelled.')
        : h('ol.timeline', { 'aria-label': 'Progress' }, flow.map((s, i) => h(`li${i < at ? '.done' : i === at ? '.current' : ''}`, { 'aria-current': i === at ? 'step' : null }, statusWord(s)))),
      h('p', o.fulfilment === 'delivery' ? `Delivery to: ${o.delivery_address}` : o.fulfilment === 'pickup' ? 'Pick up at the shop.' : 'Bought in the shop.'),
      h('div.table-wrap', h('table',
        h('thead', h('tr', h('th', 'Item'), h('th.num', 'Qty'), h('th.num', 'Amount'))),
        h('tbody', o.lines.map((l) => h('tr', h('td', l.name), h('td.num', String(l.quantity)), h('td.num', money(l.subtotal_cents))))))),
      h('dl', { style: { display: 'grid', gridTemplateColumns: '1fr auto', gap: '.3rem', maxWidth: '360px', marginLeft: 'auto' } },
        h('dt', 'Subtotal'), h('dd.num', money(o.subtotal_cents)),
        o.discount_cents ? [h('dt', 'Discount'), h('dd.num', `−${money(o.discount_cents)}`)] : null,
        h('dt', 'Tax'), h('dd.num', money(o.tax_cents)),
        h('dt', h('strong', 'Total')), h('dd.num', h('strong', money(o.total_cents))),
        h('dt', 'Paid'), h('dd.num', money(o.paid_cents))),
      payment,
      err,
      h('div.row',
        payable && !intent ? payBtn : null,
        o.status === 'pending' && !holdsMoney ? cancelBtn : null)));
}

// ---- online payment ----
// A payment intent asks the payment provider for the balance due; the provider confirms it to the
// server (never through this page), and the order's live update shows it paid. The intent is kept
// per order and balance, so a reload shows "Awaiting payment" rather than asking again.
const intentKey = (o) => `shop.intent.${o.id}.${o.balance_due_cents}`;
function readIntent(o) {
  try { return JSON.parse(sessionStorage.getItem(intentKey(o)) || 'null'); } catch { return null; }
}
async function startPayment(o) {
  if (!(o.balance_due_cents > 0) || readIntent(o)) return readIntent(o);
  const k = `shop.intent-key.${o.id}.${o.balance_due_cents}`;
  let key = sessionStorage.getItem(k);
  if (!key) { key = uuid(); sessionStorage.setItem(k, key); }
  const intent = await api('POST', `/orders/${o.id}/payment-intents`, { body: {}, idempotencyKey: key });
  sessionStorage.setItem(intentKey(o), JSON.stringify(intent));
  return intent;
}
let devModeAnswer = null;
/** Whether the server runs in development mode (only there does the simulated provider exist). */
function devMode() {
  if (!devModeAnswer) {
    devModeAnswer = fetch('/health', { cache: 'no-store' })
      .then((r) => r.json()).then((h) => h.environment === 'development').catch(() => false);
  }
  return devModeAnswer;
}

async function pageOrders() {
  view = { name: 'orders' };
  setTitle('My orders');
  if (!user) { sessionStorage.setItem('shop.after', '#/orders'); go('#/signin'); return; }
  const page = await get('/orders', { limit: 50 });
  fill(main, h('h1', 'My orders'),
    page.items.length
      ? h('div.card.table-wrap', h('table',
        h('thead', h('tr', h('th', 'Order'), h('th', 'Placed'), h('th', 'Status'), h('th.num', 'Total'))),
        h('tbody', page.items.map((o) => h('tr', { dataset: { order: o.id } },
          h('td', h('a', { href: `#/orders/${o.id}` }, `#${o.number}`)),
          h('td', new Date(o.created_at).toLocaleString()),
          h('td.status', statusWord(o.status)),
          h('td.num', money(o.total_cents)))))))
      : h('p', 'No orders yet. ', h('a', { href: '#/' }, 'Start shopping')));
}

function pageSignIn() {
  view = { name: 'signin' };
  setTitle('Sign in');
  const err = errorBox();
  const email = h('input#email', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input#password', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button.btn.primary.big', { type: 'submit' }, 'Sign in');
  fill(main, h('form.card.login', {
    onsubmit: async (e) => {
      e.preventDefault();
      showError(err, null);
      await busy(submit, async () => {
        try {
          user = await login(email.value.trim(), password.value);
          signedIn();
          const after = sessionStorage.getItem('shop.after') || '#/';
          sessionStorage.removeItem('shop.after');
          go(after);
        } catch (ex) { showError(err, ex); }
      });
    },
  }, h('h1', 'Sign in'), field('Email', email), field('Password', password), err, submit,
  h('p', { style: { marginTop: '1rem' } }, 'New here? ', h('a', { href: '#/register' }, 'Create an account'))));
  email.focus();
}

function pageRegister() {
  view = { name: 'register' };
  setTitle('Create an account');
  const err = errorBox();
  const name = h('input#name', { name: 'name', autocomplete: 'name', required: true });
  const email = h('input#email', { type: 'email', name: 'email', autocomplete: 'email', required: true });
  const phone = h('input#phone', { type: 'tel', name: 'phone', autocomplete: 'tel' });
  const password = h('input#password', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minLength: 8 });
  const submit = h('button.btn.primary.big', { type: 'submit' }, 'Create account');
  const form = h('form.card.login', {
    onsubmit: async (e) => {
      e.preventDefault();
      showError(err, null);
      await busy(submit, async () => {
        try {
          const body = { name: name.value.trim(), email: email.value.trim(), password: password.value };
          if (phone.value.trim()) body.phone = phone.value.trim();
          await api('POST', '/auth/register', { body });
          user = await login(body.email, body.password);
          signedIn();
          const after = sessionStorage.getItem('shop.after') || '#/';
          sessionStorage.removeItem('shop.after');
          go(after);
        } catch (ex) { markFields(form, ex); showError(err, ex); }
      });
    },
  }, h('h1', 'Create an account'), field('Name', name), field('Email', email),
  field('Phone (optional)', phone, 'So the shop can reach you about an order.'),
  field('Password', password, 'At least 8 characters.'), err, submit);
  fill(main, form);
  name.focus();
}

// ---- live updates ----
function onEvent(f) {
  if (!f.order) return;
  const o = f.order;
  if (f.type === 'order.updated') say(`Order #${o.number} is now ${statusWord(o.status)}.`, 'info');
  if (view && view.name === 'order' && view.id === o.id) pageOrder(o.id).catch(() => {});
  if (view && view.name === 'orders') pageOrders().catch(() => {});
}

function signedIn() {
  $('#nav-signin').hidden = !!user;
  $('#nav-signout').hidden = !user;
  $('#nav-orders').hidden = !user;
  if (user && !feed) {
    feed = new LiveFeed({
      onEvent,
      onSync: () => { if (view && (view.name === 'order' || view.name === 'orders')) route(); },
    });
    feed.start();
  }
  if (!user && feed) { feed.stop(); feed = null; }
}

// ---- router ----
async function route() {
  const hash = location.hash || '#/';
  const [, a, b] = hash.split('/');
  try {
    if (a === 'p' && b) await pageProduct(b);
    else if (a === 'c' && b) await pageList({ categoryId: b });
    else if (a === 'search') await pageList({ q: decodeURIComponent(b || '') });
    else if (a === 'cart') await pageCart();
    else if (a === 'checkout') await pageCheckout();
    else if (a === 'orders' && b) await pageOrder(b);
    else if (a === 'orders') await pageOrders();
    else if (a === 'signin') pageSignIn();
    else if (a === 'register') pageRegister();
    else if (a === 'signout') {
      await logout();
      user = null;
      signedIn();
      go('#/');
      return;
    } else await pageList();
  } catch (e) {
    fill(main, h('h1', 'Sorry'), h('p.form-error', { role: 'alert' }, e.message), h('p', h('a', { href: '#/' }, 'Back to the shop')));
  }
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

async function start() {
  cartBadge();
  $('#search').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = $('#q').value.trim();
    go(q ? `#/search/${encodeURIComponent(q)}` : '#/');
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('storage', (e) => { if (e.key === CART_KEY) cartBadge(); });
  try { user = await currentUser(); } catch { user = null; }
  if (user && !session.csrf) user = null;
  signedIn();
  try { categories = (await get('/categories')).items || []; } catch { categories = []; }
  await route();
}

start();
