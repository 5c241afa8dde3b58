"""Regulated payments (EFT): the bank file layout, file intake, and (to come) delivery to the
homing bank."""
