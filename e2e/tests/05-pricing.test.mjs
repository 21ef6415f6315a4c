// The till's price preview (web/assets/pricing.js) against the server's worked examples
// (crates/domain/src/pricing.rs): the same integer rules, cent for cent.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { priceOrder, discountNeedsManager } from '../../web/assets/pricing.js';

const line = (unit_price_cents, quantity, tax_rate_bp) => ({ unit_price_cents, quantity, tax_rate_bp });
const priced = (subtotal_cents, discount_cents, tax_cents) => ({
  subtotal_cents, discount_cents, tax_cents, total_cents: subtotal_cents - discount_cents + tax_cents,
});

test('three lines, 10 % off: the worked example of docs/api.md (Pricing)', () => {
  const o = priceOrder([line(1000, 1, 825), line(250, 3, 0), line(199, 2, 1000)], { type: 'percent', value_bp: 1000 });
  assert.deepEqual(o.lines, [priced(1000, 100, 74), priced(750, 75, 0), priced(398, 40, 36)]);
  assert.deepEqual([o.subtotal_cents, o.discount_cents, o.tax_cents, o.total_cents], [2148, 215, 110, 2043]);
});

test('tax rounds half up per line', () => {
  const o = priceOrder([line(1000, 1, 825), line(100, 2, 825), line(30, 1, 825)], null);
  assert.deepEqual(o.lines, [priced(1000, 0, 83), priced(200, 0, 17), priced(30, 0, 2)]);
  assert.equal(o.total_cents, 1332);
});

test('leftover cents go to the largest remainders, ties to the earlier line', () => {
  const tie = priceOrder([line(100, 1, 0), line(100, 1, 0), line(100, 1, 0)], { type: 'amount', amount_cents: 2 });
  assert.deepEqual(tie.lines.map((l) => l.discount_cents), [1, 1, 0]);
  const uneven = priceOrder([line(100, 5, 1000), line(300, 1, 1000), line(200, 1, 1000)], { type: 'amount', amount_cents: 333 });
  assert.deepEqual(uneven.lines, [priced(500, 166, 33), priced(300, 100, 20), priced(200, 67, 13)]);
});

test('percent discounts round half up; 100 % leaves nothing to tax', () => {
  assert.equal(priceOrder([line(150, 1, 0)], { type: 'percent', value_bp: 500 }).discount_cents, 8);
  const all = priceOrder([line(999, 3, 825)], { type: 'percent', value_bp: 10000 });
  assert.deepEqual(all.lines, [priced(2997, 2997, 0)]);
  assert.equal(all.total_cents, 0);
});

test('an amount over the subtotal is flagged; large orders stay exact', () => {
  assert.ok(priceOrder([line(1000, 1, 0)], { type: 'amount', amount_cents: 1001 }).error);
  const big = priceOrder([line(999_999_99, 1000, 825), line(1, 1, 0)], { type: 'percent', value_bp: 3333 });
  assert.equal(big.lines.reduce((a, l) => a + l.discount_cents, 0), big.discount_cents);
  assert.equal(big.total_cents, big.lines.reduce((a, l) => a + l.total_cents, 0));
});

test('discounts over 20 % need a manager', () => {
  assert.equal(discountNeedsManager({ type: 'percent', value_bp: 2000 }, 1000), false);
  assert.equal(discountNeedsManager({ type: 'percent', value_bp: 2001 }, 1000), true);
  assert.equal(discountNeedsManager({ type: 'amount', amount_cents: 200 }, 1000), false);
  assert.equal(discountNeedsManager({ type: 'amount', amount_cents: 201 }, 1000), true);
});
