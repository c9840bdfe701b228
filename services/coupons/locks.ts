// Coupon locks, keyed by order: lock (held for a checkout) → redeem (paid) or
// unlock (undo); a redeemed coupon is returned (AVAILABLE again) by a full refund. The order's lock row is claimed first, then the coupon row is
// locked FOR UPDATE, so two orders racing for one coupon are serialized and the
// second sees it taken. Every operation takes the two locks in that same order.
// Anti-hanging: an unlock that finds no lock leaves an UNLOCKED tombstone that
// refuses the late lock.
import type { Db } from '../../lib/db.ts';
import { conflict, notFound } from '../../lib/http-errors.ts';
import type { Coupon, CouponLockStatus } from '../../generated/prisma/client.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';
import { type CouponUse, discountFor } from './coupons.ts';

export interface LockView {
  orderId: string;
  code: string | null;
  status: CouponLockStatus;
  discountMinor: number;
  /** true when unlocked before anything was locked */
  tombstone?: true;
}

export async function lockCoupon(
  db: Db,
  input: CouponUse & { orderId: string; code: string },
): Promise<{ created: boolean; lock: LockView }> {
  return inTransaction(db, async (tx) => {
    const claimed = await tx.$executeRaw`
      INSERT INTO coupons_locks (order_id, code, status, discount_minor, created_at, updated_at)
      VALUES (${input.orderId}, ${input.code}, 'LOCKED', 0, now(), now())
      ON CONFLICT (order_id) DO NOTHING`;
    if (claimed === 0) {
      const existing = await lockRow(tx, input.orderId);
      if (existing.status === 'UNLOCKED') throw lockReleased(input.orderId);
      return { created: false, lock: existing };
    }

    const coupon = await lockCouponRow(tx, input.code);
    const discountMinor = discountFor(coupon, input.code, input); // a refusal rolls back the claim
    await tx.coupon.update({ where: { code: input.code }, data: { status: 'LOCKED', lockedBy: input.orderId } });
    await tx.couponLock.update({ where: { orderId: input.orderId }, data: { discountMinor } });
    return { created: true, lock: { orderId: input.orderId, code: input.code, status: 'LOCKED', discountMinor } };
  });
}

export async function redeemCoupon(db: Db, orderId: string): Promise<LockView> {
  return inTransaction(db, async (tx) => {
    const lock = await lockRow(tx, orderId);
    // RETURNED: redeemed, then given back by a refund; a late redeem changes nothing
    if (lock.status === 'REDEEMED' || lock.status === 'RETURNED') return lock;
    if (lock.status === 'UNLOCKED') throw lockReleased(orderId);
    await lockCouponRow(tx, lock.code!);
    await tx.coupon.updateMany({ where: { code: lock.code!, lockedBy: orderId }, data: { status: 'REDEEMED' } });
    return setStatus(tx, lock, 'REDEEMED');
  });
}

export async function unlockCoupon(db: Db, orderId: string): Promise<LockView> {
  return inTransaction(db, async (tx) => {
    const tombstone = await tx.$executeRaw`
      INSERT INTO coupons_locks (order_id, code, status, discount_minor, created_at, updated_at)
      VALUES (${orderId}, NULL, 'UNLOCKED', 0, now(), now())
      ON CONFLICT (order_id) DO NOTHING`;
    if (tombstone === 1) return { orderId, code: null, status: 'UNLOCKED', discountMinor: 0, tombstone: true };

    const lock = await lockRow(tx, orderId);
    if (lock.status === 'UNLOCKED') return lock;
    if (lock.status === 'REDEEMED' || lock.status === 'RETURNED') {
      throw conflict('already_redeemed', `coupon for order ${orderId} is already redeemed`);
    }
    await lockCouponRow(tx, lock.code!);
    await tx.coupon.updateMany({
      where: { code: lock.code!, lockedBy: orderId },
      data: { status: 'AVAILABLE', lockedBy: null },
    });
    return setStatus(tx, lock, 'UNLOCKED');
  });
}

/** REDEEMED → RETURNED: the coupon is AVAILABLE again, for the same customer too. */
export async function returnCoupon(db: Db, orderId: string): Promise<LockView> {
  return inTransaction(db, async (tx) => {
    const lock = await lockRow(tx, orderId);
    if (lock.status === 'RETURNED') return lock;
    if (lock.status !== 'REDEEMED') {
      throw conflict('not_redeemed', `coupon for order ${orderId} is ${lock.status.toLowerCase()}, not redeemed`, { status: lock.status });
    }
    await lockCouponRow(tx, lock.code!);
    await tx.coupon.updateMany({
      where: { code: lock.code!, lockedBy: orderId, status: 'REDEEMED' },
      data: { status: 'AVAILABLE', lockedBy: null },
    });
    return setStatus(tx, lock, 'RETURNED');
  });
}

export async function getLock(db: Db, orderId: string): Promise<LockView> {
  const lock = await db.couponLock.findUnique({ where: { orderId } });
  if (!lock) throw notFound(`no coupon lock for order ${orderId}`);
  return view(lock);
}

async function lockRow(tx: Tx, orderId: string): Promise<LockView> {
  const [row] = await tx.$queryRaw<{ orderId: string; code: string | null; status: CouponLockStatus; discountMinor: number }[]>`
    SELECT order_id AS "orderId", code, status::text AS status, discount_minor AS "discountMinor"
      FROM coupons_locks WHERE order_id = ${orderId} FOR UPDATE`;
  if (!row) throw notFound(`no coupon lock for order ${orderId}`);
  return view(row);
}

async function lockCouponRow(tx: Tx, code: string): Promise<Coupon | undefined> {
  await tx.$queryRaw`SELECT 1 FROM coupons_coupons WHERE code = ${code} FOR UPDATE`;
  return (await tx.coupon.findUnique({ where: { code } })) ?? undefined;
}

async function setStatus(tx: Tx, lock: LockView, status: CouponLockStatus): Promise<LockView> {
  await tx.couponLock.update({ where: { orderId: lock.orderId }, data: { status } });
  return { ...lock, status };
}

function view(lock: { orderId: string; code: string | null; status: CouponLockStatus; discountMinor: number }): LockView {
  const { orderId, code, status, discountMinor } = lock;
  return { orderId, code, status, discountMinor, ...(code === null ? { tombstone: true as const } : {}) };
}

function lockReleased(orderId: string) {
  return conflict('lock_released', `coupon lock for order ${orderId} was already released`);
}
