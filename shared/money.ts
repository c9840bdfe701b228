// Money is always integer minor units plus an ISO-4217 currency code.
import { minorUnitExponent } from './currencies.ts';

export interface Money {
  amountMinor: number;
  currency: string;
}

/** `12.34 EUR`, `1234 JPY`, `1.234 KWD`: as many decimals as the currency's minor unit has. */
export function formatMoney({ amountMinor, currency }: Money): string {
  const sign = amountMinor < 0 ? '-' : '';
  const abs = Math.abs(amountMinor);
  const exponent = minorUnitExponent(currency);
  if (exponent === 0) return `${sign}${abs} ${currency}`;
  const unit = 10 ** exponent;
  return `${sign}${Math.floor(abs / unit)}.${String(abs % unit).padStart(exponent, '0')} ${currency}`;
}
