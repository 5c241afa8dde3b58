"""Prepaid utilities: the Electrum Prepaid Utility Service Interface v3, both as server and client."""
