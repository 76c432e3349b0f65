"""The bureau's CSV files: decoding (UTF-8 with or without BOM, else GB18030/GBK) and the pure
readers of branch offices, people, terminals and market entities.

Every reader returns (records, Problems): a bad row is reported with its line number and a reason,
good rows still load, a duplicate key keeps the first. A file that does not decode is rejected
whole with its first undecodable line (a half-decoded file would store wrong names).

Columns (header row required, extra columns ignored):
* branch offices: code, name_zh, name_en, synthetic
* people: person_id, name, role, phone, grids (';'-separated codes), synthetic
* terminals: terminal_id, person_id, model
* entities: uscc, name, kind, industry, licence_food, licence_drug, licence_special_equipment,
  address, lat, lon, registered_on (YYYY-MM-DD), risk_level (A-D), synthetic
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from grid import uscc
from grid.model import BranchOffice, EntityKind, Person, Problem, RISK_LEVELS, Role, Terminal

log = logging.getLogger("grid.importer")  # one logger for the whole import, as operators filter by it

TERMINAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # same rule as schemas.topics.TERMINAL_ID_PATTERN
TRUE = {"true", "t", "1", "yes", "y", "是"}
FALSE = {"false", "f", "0", "no", "n", "否", ""}
ENTITY_COLUMNS = ("uscc", "name", "kind", "industry", "licence_food", "licence_drug", "licence_special_equipment",
                  "address", "lat", "lon", "registered_on", "risk_level", "synthetic")


class RowError(ValueError):
    """A reason a row is rejected."""


def parse_bool(value: str | bool | None) -> bool:
    if isinstance(value, bool):
        return value
    v = (value or "").strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise RowError(f"not a boolean: {value!r}")


def need(row: dict, col: str) -> str:
    v = (row.get(col) or "").strip()
    if not v:
        raise RowError(f"{col} is empty")
    return v


class UndecodableFile(ValueError):
    """The bytes do not decode: ``line`` is the first line that fails under ``encoding``."""

    def __init__(self, encoding: str, line: int, message: str):
        super().__init__(message)
        self.encoding, self.line = encoding, line


def _undecodable(data: bytes, exc: UnicodeDecodeError, hint: str) -> UndecodableFile:
    line = data[: exc.start].decode(exc.encoding, errors="replace").count("\n") + 1
    bad = data[exc.start: exc.end]
    return UndecodableFile(exc.encoding, line, f"cannot be decoded as {exc.encoding} (bytes {bad.hex(' ')}); {hint}")


_WIDE = re.compile("[\u0800-\ufffc\ufffe-\U0010ffff]")  # three- and four-byte UTF-8 characters, U+FFFD aside


def _mostly_utf8(data: bytes) -> bool:
    """UTF-8 but for a few bad bytes (a damaged UTF-8 file), as against GBK text. Chinese in UTF-8
    takes three bytes; GBK pairs that happen to be valid UTF-8 are two-byte sequences (three-byte
    ones by chance are rare), so only three-byte characters count as evidence. GB18030 decodes
    almost any bytes: it must not get a damaged UTF-8 file, whose names it would turn into wrong ones."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    wide = sum(1 for _ in _WIDE.finditer(text))
    return wide >= 4 * bad


_NOT_CJK = re.compile(r"[^\x00-\x7f\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def _gbk_posing_as_utf8(data: bytes, text: str) -> bool:
    """Valid UTF-8 that is GBK: some GBK pairs are also UTF-8 two-byte sequences (鹰潭 is), which
    decode to Cyrillic- or Arabic-range letters. Chinese in UTF-8 takes three bytes, so a file
    whose UTF-8 reading has no three-byte character but whose GB18030 reading is all Chinese is
    GBK (only short files can fall here: a long GBK file is never valid UTF-8)."""
    if text.isascii() or max(text) >= "\u0800":
        return False
    try:
        return _NOT_CJK.search(data.decode("gb18030")) is None
    except UnicodeDecodeError:
        return False


def _strict(data: bytes, codec: str) -> str:
    """``data`` decoded under ``codec``, strictly; a UTF-8 BOM is dropped (never part of the header)."""
    if codecs.lookup(codec).name == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]  # error offsets (and so line numbers) count from here
    return data.decode(codec)


def decode_csv(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding used) of a CSV file's bytes; raises UndecodableFile.

    ``encoding`` forces one (strict). Otherwise UTF-8 (a BOM is dropped), then GB18030 (GBK),
    both strict: UTF-8 first because GBK text is almost never valid UTF-8, while any UTF-8 would
    decode, wrongly, as GB18030."""
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    if encoding:
        try:
            return _strict(data, encoding), encoding
        except UnicodeDecodeError as exc:
            raise _undecodable(exc.object, exc, f"is --encoding {encoding} right?") from None
    try:
        text = _strict(data, "utf-8")
        if not _gbk_posing_as_utf8(body, text):
            return text, "utf-8 with BOM" if body is not data else "utf-8"
    except UnicodeDecodeError as exc:
        if _mostly_utf8(body):
            raise _undecodable(body, exc, "the rest is UTF-8: the file is damaged there") from None
    try:
        return data.decode("gb18030"), "gb18030 (GBK)"
    except UnicodeDecodeError as exc:
        raise _undecodable(data, exc, "neither UTF-8 nor GB18030/GBK: save it as UTF-8 or give --encoding") from None


def _rows(path: Path, required: Iterable[str], encoding: str | None = None) -> tuple[list[tuple[int, dict]], list[Problem]]:
    """(line number, row) pairs of a CSV file, or a file-level problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], [Problem(path.name, "file", f"cannot open: {exc}")]
    try:
        text, used = decode_csv(data, encoding)
    except UndecodableFile as exc:
        return [], [Problem(path.name, f"line {exc.line}", f"file rejected: {exc}")]
    log.info("%s: read as %s (%s)", path.name, used, "given" if encoding else "detected")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        return [], [Problem(path.name, "line 1", f"missing column(s): {', '.join(missing)}")]
    out = []
    for row in reader:
        out.append((reader.line_num, row))
    return out, []


def _parse(path: Path, required: tuple[str, ...], key: str, build, encoding: str | None = None) -> tuple[list, list[Problem]]:
    rows, problems = _rows(path, required, encoding)
    out, first = [], {}
    for line, row in rows:
        try:
            if None in row:
                raise RowError("more fields than the header has")
            k = (row.get(key) or "").strip()
            if k in first:
                raise RowError(f"duplicate {key} {k}, first on line {first[k]}; kept the first")
            rec = build(row)
            first[k] = line
            out.append(rec)
        except RowError as exc:
            problems.append(Problem(path.name, f"line {line}", str(exc)))
    return out, problems


def read_branches(path: Path, encoding: str | None = None) -> tuple[list[BranchOffice], list[Problem]]:
    def build(r):
        return BranchOffice(need(r, "code"), need(r, "name_zh"), (r.get("name_en") or "").strip(),
                            parse_bool(r.get("synthetic")))
    return _parse(path, ("code", "name_zh"), "code", build, encoding)


def read_people(path: Path, encoding: str | None = None) -> tuple[list[Person], list[Problem]]:
    def build(r):
        role = need(r, "role")
        try:
            role = Role(role)
        except ValueError:
            raise RowError(f"role {role!r} is not one of {', '.join(x.value for x in Role)}") from None
        grids = tuple(g.strip() for g in (r.get("grids") or "").replace(",", ";").split(";") if g.strip())
        if role in (Role.CO_MANAGER, Role.INFORMANT, Role.LEVEL1_SUPERVISOR) and len(grids) != 1:
            raise RowError(f"a {role.value} has exactly one grid, got {len(grids)}")
        if role == Role.LEVEL2_SUPERVISOR and not grids:
            raise RowError("an officer (level2_supervisor) needs at least one grid")
        return Person(need(r, "person_id"), need(r, "name"), role, (r.get("phone") or "").strip(), grids,
                      parse_bool(r.get("synthetic")))
    return _parse(path, ("person_id", "name", "role", "grids"), "person_id", build, encoding)


def read_terminals(path: Path, encoding: str | None = None) -> tuple[list[Terminal], list[Problem]]:
    def build(r):
        tid = need(r, "terminal_id")
        if not TERMINAL_ID.match(tid):
            raise RowError(f"terminal_id {tid!r} must match {TERMINAL_ID.pattern}")
        return Terminal(tid, need(r, "person_id"), (r.get("model") or "").strip())
    return _parse(path, ("terminal_id", "person_id"), "terminal_id", build, encoding)


def _entity(r: dict) -> dict:
    code = need(r, "uscc").upper()
    why = uscc.validation_error(code)
    if why:
        raise RowError(f"uscc {code}: {why}")
    kind = need(r, "kind")
    if kind not in {k.value for k in EntityKind}:
        raise RowError(f"kind {kind!r} is not one of {', '.join(k.value for k in EntityKind)}")
    try:
        lat, lon = float(need(r, "lat")), float(need(r, "lon"))
    except ValueError:
        raise RowError(f"lat/lon not numbers: {r.get('lat')!r}, {r.get('lon')!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not (np.isfinite(lat) and np.isfinite(lon)):
        raise RowError(f"lat/lon out of range: {lat}, {lon}")
    reg = (r.get("registered_on") or "").strip()
    try:
        reg_d = dt.date.fromisoformat(reg) if reg else None
    except ValueError:
        raise RowError(f"registered_on {reg!r} is not YYYY-MM-DD") from None
    risk = (r.get("risk_level") or "B").strip().upper()
    if risk not in RISK_LEVELS:
        raise RowError(f"risk_level {risk!r} is not one of A, B, C, D")
    return {"uscc": code, "name": need(r, "name"), "kind": kind, "industry": (r.get("industry") or "").strip(),
            "licence_food": parse_bool(r.get("licence_food")), "licence_drug": parse_bool(r.get("licence_drug")),
            "licence_special_equipment": parse_bool(r.get("licence_special_equipment")),
            "address": (r.get("address") or "").strip(), "lat": lat, "lon": lon, "registered_on": reg_d,
            "risk_level": risk, "synthetic": parse_bool(r.get("synthetic"))}


def read_entities(path: Path, encoding: str | None = None) -> tuple[list[dict], list[Problem]]:
    return _parse(path, ("uscc", "name", "kind", "lat", "lon"), "uscc", _entity, encoding)
