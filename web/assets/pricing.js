// Client-side price preview with exactly the server's integer rules (docs/api.md, Pricing).
// BigInt throughout: discount × line subtotal can exceed 2^53 on large orders.

const FULL_BP = 10000n;

/** round_half_up(n / d) for n ≥ 0, d > 0. */
const roundHalfUp = (n, d) => (2n * n + d) / (2n * d);

/**
 * lines: [{unit_price_cents, quantity, tax_rate_bp}]
 * discount: null | {type:'percent', value_bp} | {type:'amount', amount_cents}
 * → {lines:[{subtotal_cents, discount_cents, tax_cents, total_cents}], subtotal_cents, discount_cents,
 *    tax_cents, total_cents, error?: string}
 */
export function priceOrder(lines, discount) {
  const subtotals = lines.map((l) => BigInt(l.unit_price_cents) * BigInt(l.quantity));
  const subtotal = subtotals.reduce((a, b) => a + b, 0n);
  let disc = 0n;
  let error = null;
  if (discount && discount.type === 'percent') {
    disc = roundHalfUp(subtotal * BigInt(discount.value_bp), FULL_BP);
  } else if (discount && discount.type === 'amount') {
    disc = BigInt(discount.amount_cents);
    if (disc > subtotal) {
      error = 'The discount is larger than the subtotal.';
      disc = subtotal;
    }
  }
  // Spread the discount by largest remainder; ties go to the earlier line.
  const shares = subtotals.map(() => 0n);
  if (subtotal > 0n) {
    const rems = [];
    subtotals.forEach((s, i) => {
      const exact = disc * s;
      shares[i] = exact / subtotal;
      rems.push([exact % subtotal, i]);
    });
    const given = shares.reduce((a, b) => a + b, 0n);
    let left = Number(disc - given);
    rems.sort((a, b) => (a[0] === b[0] ? a[1] - b[1] : (b[0] > a[0] ? 1 : -1)));
    for (const [, i] of rems) {
      if (left <= 0) break;
      shares[i] += 1n;
      left -= 1;
    }
  }
  let tax = 0n;
  const out = lines.map((l, i) => {
    const base = subtotals[i] - shares[i];
    const t = roundHalfUp(base * BigInt(l.tax_rate_bp), FULL_BP);
    tax += t;
    return {
      subtotal_cents: Number(subtotals[i]),
      discount_cents: Number(shares[i]),
      tax_cents: Number(t),
      total_cents: Number(base + t),
    };
  });
  return {
    lines: out,
    subtotal_cents: Number(subtotal),
    discount_cents: Number(disc),
    tax_cents: Number(tax),
    total_cents: Number(subtotal - disc + tax),
    error,
  };
}

/** Would this discount need a manager (over 20 %)? */
export function discountNeedsManager(discount, subtotalCents) {
  if (!discount) return false;
  if (discount.type === 'percent') return discount.value_bp > 2000;
  return BigInt(discount.amount_cents) * 5n > BigInt(subtotalCents);
}
