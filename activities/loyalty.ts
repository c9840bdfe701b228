// Loyalty service: points for a paid order (one per whole major unit, computed by the service).
import { callService } from './http.ts';

export interface AwardLoyaltyPointsInput {
  idempotencyKey: string;
  orderId: string;
  customerId: string;
  amountMinor: number;
  currency: string;
}
export interface AwardLoyaltyPointsResult {
  points: number;
}

export function loyaltyActivities(baseUrl: string) {
  const service = 'loyalty';
  return {
    async awardLoyaltyPoints({ idempotencyKey, ...award }: AwardLoyaltyPointsInput): Promise<AwardLoyaltyPointsResult> {
      const body = await callService<AwardLoyaltyPointsResult>({ service, baseUrl, path: '/awards', body: award, idempotencyKey });
      return { points: body.points };
    },
  };
}
