"""Shipped data: the real Yingtan divisions (grid/data/yingtan/), extracted by extract_yingtan.py."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
YINGTAN_DIR = DATA_DIR / "yingtan"
