// Money is always integer minor units plus an ISO-4217 currency code.
export interface Money {
  amountMinor: number;
  currency: string;
}

export function formatMoney({ amountMinor, currency }: Money): string {
  const sign = amountMinor < 0 ? '-' : '';
  const abs = Math.abs(amountMinor);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')} ${currency}`;
}
