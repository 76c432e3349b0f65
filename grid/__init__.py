"""The territory: two-level grids, the people who work them, the market-entity registry.

Pure core (model, uscc, locate, adjacency, coverage, tiling, geometry) with the database and
file I/O at the edges (store, importer, democity, cli). Every service may import this package.
"""

from grid.locate import GridLocator, assign_grid
from grid.model import GridRef

__all__ = ["GridLocator", "GridRef", "assign_grid"]
