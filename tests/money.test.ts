// ISO 4217 codes and their minor units: what the API and the services accept as a currency, and
// how amounts in minor units are shown.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isIso4217, minorUnitExponent } from '../shared/currencies.ts';
import { formatMoney } from '../shared/money.ts';

test('active ISO 4217 codes are accepted; made-up, lower-case, withdrawn and unit-less codes are not', () => {
  for (const code of ['EUR', 'USD', 'JPY', 'KWD', 'CHF', 'CLF']) assert.ok(isIso4217(code), code);
  for (const code of ['ZZZ', 'eur', 'EU', 'HRK', 'XAU', 'XXX', 'XTS', 'toString', '']) assert.ok(!isIso4217(code), code);
});

test('amounts are shown with as many decimals as the currency has', () => {
  assert.equal(minorUnitExponent('EUR'), 2);
  assert.equal(formatMoney({ amountMinor: 4999, currency: 'EUR' }), '49.99 EUR');
  assert.equal(formatMoney({ amountMinor: -5, currency: 'EUR' }), '-0.05 EUR');
  assert.equal(formatMoney({ amountMinor: 4999, currency: 'JPY' }), '4999 JPY');
  assert.equal(formatMoney({ amountMinor: 1234, currency: 'KWD' }), '1.234 KWD');
});
