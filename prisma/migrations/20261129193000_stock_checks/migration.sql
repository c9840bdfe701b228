-- The last line of defence against overselling: whatever the code does, stock
-- can never go negative and never more can be reserved than is on hand.
ALTER TABLE "inventory_stock"
  ADD CONSTRAINT "inventory_stock_on_hand_check" CHECK ("on_hand" >= 0),
  ADD CONSTRAINT "inventory_stock_reserved_check" CHECK ("reserved" >= 0 AND "reserved" <= "on_hand");

ALTER TABLE "inventory_reservation_lines"
  ADD CONSTRAINT "inventory_reservation_lines_quantity_check" CHECK ("quantity" > 0);
