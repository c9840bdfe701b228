// The active ISO 4217 currency codes and their minor-unit exponent (how many decimals the minor
// unit has: 2 for EUR, 0 for JPY, 3 for KWD). Codes without minor units (precious metals, XDR,
// the testing and "no currency" codes) are left out: nothing can be priced or paid in them.
// Kept free of Node imports (workflows format money with it).

const BY_EXPONENT: Record<number, string> = {
  0: 'BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF',
  2:
    'AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD ' +
    'CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL ' +
    'GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR ' +
    'LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD ' +
    'PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC ' +
    'SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG',
  3: 'BHD IQD JOD KWD LYD OMR TND',
  4: 'CLF UYW',
};

/** Code → minor-unit exponent, for every active ISO 4217 currency with minor units. */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries(
    Object.entries(BY_EXPONENT).flatMap(([exponent, codes]) => codes.split(' ').map((code) => [code, Number(exponent)])),
  ),
);

export function isIso4217(code: string): boolean {
  return Object.hasOwn(CURRENCY_EXPONENTS, code);
}

/** Decimals of the currency's minor unit; 2 for a code we do not know (so formatting never fails). */
export function minorUnitExponent(code: string): number {
  return CURRENCY_EXPONENTS[code] ?? 2;
}
