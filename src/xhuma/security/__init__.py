"""Authentication of API clients and handling of secrets."""
