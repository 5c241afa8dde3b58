"""Simulated providers and banks: real HTTP servers speaking the real protocols, so the whole
system runs and is tested on one machine."""
