// Failure types shared by activities (which throw them) and workflows (which
// branch on them). Business failures are non-retryable ApplicationFailures whose
// `type` is one of these; anything else is infrastructure and is retried.
export const BusinessFailure = {
  OutOfStock: 'OutOfStock',
  UnknownSku: 'UnknownSku',
  /** The price the caller quoted is not the catalogue's (the order is priced from the catalogue). */
  PriceChanged: 'PriceChanged',
  /** The catalogue sells a SKU in another currency than the order's. */
  CurrencyMismatch: 'CurrencyMismatch',
  InvalidCoupon: 'InvalidCoupon',
  PaymentDeclined: 'PaymentDeclined',
  /** A late step refused because its compensation already ran (anti-hanging). */
  AlreadyCompensated: 'AlreadyCompensated',
  IllegalTransition: 'IllegalTransition',
  InvalidRequest: 'InvalidRequest',
  CheckoutCancelled: 'CheckoutCancelled',
  /** The campaign's total quota is used up. */
  QuotaExhausted: 'QuotaExhausted',
  /** The customer already holds as many of the campaign's coupons as allowed. */
  CustomerLimitReached: 'CustomerLimitReached',
  /** The campaign is outside its validity window. */
  CampaignClosed: 'CampaignClosed',
} as const;
export type BusinessFailureType = (typeof BusinessFailure)[keyof typeof BusinessFailure];
