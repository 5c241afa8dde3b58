"""Digital vouchers: the Single Use Voucher (SUV) interface v1, the product catalogue, the switch."""
