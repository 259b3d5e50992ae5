SELECT billing.reserve_credits(1, 0.01);
