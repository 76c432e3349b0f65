"""Split a county's level-2 grids into officer patches of adjacent grids.

The source has one enforcement officer per patch of neighbouring villages ("officers of adjacent
grids work together"): 116 officers over 528 grids is 4–5 grids each. This is a small
graph-partition problem; a greedy grower (start from the most cornered grid, grow towards the
most cornered neighbours so nobody is stranded) with seeded restarts finds exact 4–5 splits of
the Yingtan tiling quickly. If no restart succeeds, the best split found is returned and the
caller reports patches whose size or connectivity is off.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence


def patch_sizes(n_grids: int, n_officers: int) -> list[int]:
    """Sizes that differ by at most one and sum to ``n_grids`` (larger first)."""
    if n_officers <= 0:
        raise ValueError("need at least one officer")
    base, extra = divmod(n_grids, n_officers)
    return [base + 1] * extra + [base] * (n_officers - extra)


def split_officers(per_county: Mapping[str, int], total: int) -> dict[str, int]:
    """Officers per county proportional to its grid count (largest remainder), each at least 1."""
    n = sum(per_county.values())
    raw = {c: total * k / n for c, k in per_county.items()}
    out = {c: max(1, int(v)) for c, v in raw.items()}
    for c in sorted(raw, key=lambda c: (raw[c] - int(raw[c]), c), reverse=True):
        if sum(out.values()) >= total:
            break
        out[c] += 1
    return out


def _connected(group: Sequence[str], adj: Mapping[str, set[str]]) -> bool:
    if not group:
        return False
    todo, seen, members = [group[0]], {group[0]}, set(group)
    while todo:
        for m in adj.get(todo.pop(), ()):
            if m in members and m not in seen:
                seen.add(m)
                todo.append(m)
    return len(seen) == len(members)


def _grow(nodes: Sequence[str], adj: Mapping[str, set[str]], sizes: Sequence[int], order: dict[str, int]) -> list[list[str]]:
    free = set(nodes)

    def degree(n: str, taken: set[str]) -> int:
        return sum(1 for m in adj.get(n, ()) if m in free and m not in taken)

    groups: list[list[str]] = []
    for target in sizes:
        if not free:
            groups.append([])
            continue
        start = min(free, key=lambda n: (degree(n, set()), order[n]))
        group, taken = [start], {start}
        while len(group) < target:
            cands = {m for g in group for m in adj.get(g, ()) if m in free and m not in taken}
            if not cands:
                break
            pick = min(cands, key=lambda m: (degree(m, taken), order[m]))
            group.append(pick)
            taken.add(pick)
        groups.append(group)
        free -= taken
    for n in sorted(free, key=order.get):  # stranded grids join a neighbouring patch
        near = [g for g in groups if any(m in adj.get(n, ()) for m in g)]
        (min(near, key=len) if near else min(groups, key=len)).append(n)
    return groups


def _badness(groups: list[list[str]], adj: Mapping[str, set[str]], sizes: Sequence[int]) -> int:
    lo, hi = min(sizes), max(sizes)
    return sum((not lo <= len(g) <= hi) + (not _connected(g, adj)) for g in groups)


def officer_patches(
    nodes: Sequence[str],
    adj: Mapping[str, set[str]],
    n_officers: int,
    rng: random.Random,
    tries: int = 200,
) -> tuple[list[list[str]], int]:
    """``n_officers`` patches covering ``nodes`` exactly once; returns (patches, badness).

    badness = number of patches whose size is off the target range or that are not connected
    (0 = every patch is 4–5 adjacent grids for the default demo)."""
    sizes = patch_sizes(len(nodes), n_officers)
    best, best_bad = None, None
    base = sorted(nodes)
    for _ in range(tries):
        perm = base[:]
        rng.shuffle(perm)
        order = {n: i for i, n in enumerate(perm)}
        groups = _grow(base, adj, sizes, order)
        bad = _badness(groups, adj, sizes)
        if best_bad is None or bad < best_bad:
            best, best_bad = groups, bad
        if bad == 0:
            break
    assert best is not None and best_bad is not None
    return [sorted(g) for g in best], best_bad
