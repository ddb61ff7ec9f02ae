"""Tiny single-purpose PE test drivers (see csrc/drivers/testing/)."""
