"""A seeded, deterministic fault simulator of the switch (in the manner of TigerBeetle's VOPR):
one process, a virtual clock, fake providers, injected database faults and crashes, and a
checker of money safety at the end. `python -m tests.sim --seeds 100` runs it."""
