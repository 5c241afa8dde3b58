"""Which providers to try for a meter, in which order: pure, so the policy can be tested
exhaustively and its weights checked statistically."""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence


def order_providers(
    supported: Collection[str],
    *,
    preferences: Mapping[str, int],
    excluded: Collection[str],
    weights: Mapping[str, float],
    available: Collection[str],
    rng: random.Random,
) -> list[str]:
    """Providers to try, best first.

    Excluded providers never appear. Among the available ones, the operator's preferences for
    the meter's municipality come first, by rank; the rest follow in a weighted random order
    (weighted sampling without replacement), so over many purchases each is chosen first in
    proportion to its weight. Unavailable providers come last, as a last resort, in the same
    order rules."""
    usable = [p for p in supported if p not in excluded]
    up = [p for p in usable if p in available]
    down = [p for p in usable if p not in available]
    return _ranked(up, preferences, weights, rng) + _ranked(down, preferences, weights, rng)


def _ranked(
    providers: Sequence[str], preferences: Mapping[str, int], weights: Mapping[str, float], rng: random.Random
) -> list[str]:
    preferred = sorted((p for p in providers if p in preferences), key=lambda p: (preferences[p], p))
    rest = sorted(p for p in providers if p not in preferences)
    return preferred + _weighted_order(rest, weights, rng)


def _weighted_order(providers: list[str], weights: Mapping[str, float], rng: random.Random) -> list[str]:
    pool = [(p, max(0.0, weights.get(p, 1.0))) for p in providers]
    ordered: list[str] = []
    while pool:
        total = sum(w for _, w in pool)
        if total <= 0:
            ordered += [p for p, _ in pool]
            break
        pick = rng.uniform(0, total)
        for index, (provider, weight) in enumerate(pool):
            pick -= weight
            if pick <= 0 or index == len(pool) - 1:
                ordered.append(provider)
                del pool[index]
                break
    return ordered
