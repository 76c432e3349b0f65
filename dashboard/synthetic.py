"""A synthetic city for the wall's browser test and benchmark, used where the demo city
(``python -m grid demo``) is not loaded: rectangular level-1 grids split into level-2 grids,
people, terminals, market entities, a day of events, and live terminal state in Redis.

Everything is marked synthetic. Writes only the contract tables of docs/architecture.md.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg
import redis as redis_lib

from schemas.topics import RedisKeys

KINDS = ("inspection.started", "inspection.completed", "report", "patrol.started", "patrol.ended")
CATEGORIES = ("complaint", "consultation", "tip", "clue", "help")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉鹏斌宇浩凯健俊帆晨阳欣怡"
TOWNS = "月湖 江边 交通 东湖 梅园 白露 四青 童家 邓埠 锦江 潢溪 中童 马荃 杨溪 春涛 刘家站 平定 洪湖 黄庄 画桥 雄石 花园 东门 滨江 河潭 周坊 泗沥 流口 鸿塘 志光 金屯 文坊 冷水 罗河 耳口 塘湾 天禄 樟坪 上清 龙虎山 桃源 彭湾 柏林 雷溪 塔桥 白田 鹰园 罗塘 西窑 三川 龙岗 新田 石港 高公 旭光 夏埠 泉岭 角山 水泥".split()


@dataclass
class City:
    locator: object | None = None  # grid.locate.GridLocator for real polygons; None: rectangles
    level1: list[dict] = field(default_factory=list)
    level2: list[dict] = field(default_factory=list)
    persons: list[dict] = field(default_factory=list)
    person_grid: list[tuple[str, str, str]] = field(default_factory=list)
    terminals: list[dict] = field(default_factory=list)
    entities: list[tuple] = field(default_factory=list)


def _rect(x0, y0, x1, y1) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def build_city(
    n_level1: int = 59, split: int = 3, n_terminals: int = 1000, n_entities: int = 70_000,
    bbox=(116.70, 27.85, 117.45, 28.60), seed: int = 7,
) -> City:
    """530-odd level-2 grids (59 x 3 x 3), people, ``n_terminals`` terminals, ``n_entities`` entities."""
    rnd = random.Random(seed)
    city = City()
    cols = math.ceil(math.sqrt(n_level1 * 1.2))
    rows = math.ceil(n_level1 / cols)
    lon0, lat0, lon1, lat1 = bbox
    w, h = (lon1 - lon0) / cols, (lat1 - lat0) / rows
    for i in range(n_level1):
        cx, cy = i % cols, i // cols
        x0, y0 = lon0 + cx * w, lat0 + cy * h
        code1 = f"3606{i // 20 + 2:02d}{i % 20 + 1:03d}"
        nm = TOWNS[i % len(TOWNS)] + ("街道" if i % 4 == 0 else "镇")
        city.level1.append({"code": code1, "name_zh": nm, "name_en": f"Township {i + 1}", "branch": f"3606{i // 20 + 2:02d}",
                            "geom": _rect(x0, y0, x0 + w, y0 + h), "lat": y0 + h / 2, "lon": x0 + w / 2})
        for j in range(split * split):
            sx, sy = j % split, j // split
            a0, b0 = x0 + sx * w / split, y0 + sy * h / split
            code2 = f"{code1}{j + 1:03d}"
            city.level2.append({"code": code2, "name_zh": f"{nm[:2]}{'东西南北中新上下前后'[j % 10]}{'村' if j % 3 else '社区'}",
                                "name_en": f"Village {i + 1}-{j + 1}", "parent": code1,
                                "geom": _rect(a0, b0, a0 + w / split, b0 + h / split),
                                "lat": b0 + h / split / 2, "lon": a0 + w / split / 2, "bbox": (a0, b0, a0 + w / split, b0 + h / split)})

    def name() -> str:
        return rnd.choice(SURNAMES) + rnd.choice(GIVEN) + (rnd.choice(GIVEN) if rnd.random() < 0.6 else "")

    pid = 0

    def person(role: str) -> str:
        nonlocal pid
        pid += 1
        p = f"P{pid:05d}"
        city.persons.append({"person_id": p, "name": name(), "role": role, "phone": f"1{rnd.randint(3000000000, 9999999999)}"})
        return p

    for g in city.level1:
        city.person_grid.append((person("level1_supervisor"), g["code"], "level1_supervisor"))
    officers = []
    for k in range(0, len(city.level2), 5):  # one officer per 4-5 adjacent level-2 grids (116 for 530)
        p = person("level2_supervisor")
        officers.append(p)
        for g in city.level2[k : k + 5]:
            city.person_grid.append((p, g["code"], "level2_supervisor"))
    for g in city.level2:
        city.person_grid.append((person("co_manager"), g["code"], "co_manager"))
        city.person_grid.append((person("informant"), g["code"], "informant"))
    # Terminals: every supervisor and officer, then co-managers until n_terminals.
    holders = [p["person_id"] for p in city.persons if p["role"] in ("level1_supervisor", "level2_supervisor")]
    others = [p["person_id"] for p in city.persons if p["role"] in ("co_manager", "informant")]
    holders += rnd.sample(others, min(len(others), max(0, n_terminals - len(holders))))
    for n, p in enumerate(holders[:n_terminals]):
        city.terminals.append({"terminal_id": f"T{n + 1:05d}", "person_id": p})
    # The home grid of each terminal: the first grid its person has.
    home = {}
    for p, g, _ in city.person_grid:
        home.setdefault(p, g)
    by_code = {g["code"]: g for g in city.level2} | {g["code"]: g for g in city.level1}
    for tm in city.terminals:
        g = by_code[home[tm["person_id"]]]
        tm["home"] = g["code"]
        tm["lat"], tm["lon"] = g["lat"] + rnd.uniform(-0.01, 0.01), g["lon"] + rnd.uniform(-0.01, 0.01)
    industries = ["餐饮", "食品销售", "药品零售", "特种设备", "批发零售", "住宿", "美容美发"]
    for n in range(n_entities):
        g = city.level2[rnd.randrange(len(city.level2))]
        a0, b0, a1, b1 = g["bbox"]
        lon = rnd.uniform(a0, a1)
        lat = rnd.uniform(b0, b1)
        uscc = f"9136{n:014d}"
        city.entities.append((uscc, f"鹰潭市{rnd.choice(TOWNS)}商户{n}", rnd.choice(["enterprise", "individual_business", "individual_business", "farmer_coop"]),
                              rnd.choice(industries), lat, lon, rnd.choice("AABBBCCD"), g["code"], g["parent"]))
    return city


def locate(city: City, lat: float, lon: float) -> tuple[str | None, str | None]:
    if city.locator is not None:
        ref = city.locator.locate(lon, lat)
        return (ref.grid2_code, ref.grid1_code) if ref else (None, None)
    for g in city.level2:
        a0, b0, a1, b1 = g["bbox"]
        if a0 <= lon < a1 and b0 <= lat < b1:
            return g["code"], g["parent"]
    return None, None


def city_from_db(conn: psycopg.Connection) -> City:
    """The registry already in the database (e.g. ``python -m grid demo``) as a City for the live fleet."""
    from grid.locate import GridLocator

    city = City(locator=GridLocator.from_db(conn))
    for code, parent, lat, lon in conn.execute("SELECT code, level1_code, centroid_lat, centroid_lon FROM grid_level2 ORDER BY code"):
        city.level2.append({"code": code, "parent": parent, "lat": lat, "lon": lon})
    by_code = {g["code"]: g for g in city.level2}
    for code, lat, lon in conn.execute("SELECT code, centroid_lat, centroid_lon FROM grid_level1"):
        by_code[code] = {"code": code, "lat": lat, "lon": lon}
    rnd = random.Random(1)
    rows = conn.execute(
        "SELECT t.terminal_id, t.person_id, min(pg.grid_code) FROM terminal t LEFT JOIN person_grid pg ON pg.person_id = t.person_id"
        " GROUP BY 1, 2 ORDER BY 1"
    ).fetchall()
    for tid, pid, grid in rows:
        g = by_code.get(grid) or rnd.choice(city.level2)
        city.terminals.append({"terminal_id": tid, "person_id": pid, "home": g["code"],
                               "lat": g["lat"] + rnd.uniform(-0.005, 0.005), "lon": g["lon"] + rnd.uniform(-0.005, 0.005)})
    city.entities = [tuple(r) for r in conn.execute("SELECT uscc FROM market_entity LIMIT 1000")]
    return city


def write_registry(conn: psycopg.Connection, city: City, grid_version: str | None = None) -> None:
    """Replace the registry tables with ``city`` (COPY), and bump gw_meta grid_version."""
    with conn.transaction():
        conn.execute("TRUNCATE market_entity, terminal, person_grid, person, grid_adjacency, grid_level2, grid_level1, branch_office CASCADE")
        with conn.cursor() as cur:
            with cur.copy("COPY branch_office (code, name_zh, name_en, synthetic) FROM STDIN") as cp:
                for b in sorted({g["branch"] for g in city.level1}):
                    cp.write_row((b, {"360602": "月湖区", "360603": "余江区"}.get(b, "贵溪市"), b, True))
            with cur.copy("COPY grid_level1 (code, name_zh, name_en, branch_code, geom, centroid_lat, centroid_lon, synthetic) FROM STDIN") as cp:
                for g in city.level1:
                    cp.write_row((g["code"], g["name_zh"], g["name_en"], g["branch"], json.dumps(g["geom"]), g["lat"], g["lon"], True))
            with cur.copy("COPY grid_level2 (code, name_zh, name_en, level1_code, geom, centroid_lat, centroid_lon, area_km2, synthetic) FROM STDIN") as cp:
                for g in city.level2:
                    cp.write_row((g["code"], g["name_zh"], g["name_en"], g["parent"], json.dumps(g["geom"]), g["lat"], g["lon"], 10.0, True))
            with cur.copy("COPY person (person_id, name, role, phone, synthetic) FROM STDIN") as cp:
                for p in city.persons:
                    cp.write_row((p["person_id"], p["name"], p["role"], p["phone"], True))
            with cur.copy("COPY person_grid (person_id, grid_code, role) FROM STDIN") as cp:
                for row in city.person_grid:
                    cp.write_row(row)
            with cur.copy("COPY terminal (terminal_id, person_id, model) FROM STDIN") as cp:
                for tm in city.terminals:
                    cp.write_row((tm["terminal_id"], tm["person_id"], "synthetic"))
            with cur.copy("COPY market_entity (uscc, name, kind, industry, lat, lon, risk_level, grid2_code, grid1_code, synthetic) FROM STDIN") as cp:
                for e in city.entities:
                    cp.write_row((*e, True))
        conn.execute(
            "INSERT INTO gw_meta (key, value) VALUES ('grid_version', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            (grid_version or f"synthetic-{int(time.time())}",),
        )


def _rollup_is_table(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'event_hourly'").fetchone()
    return bool(row) and row[0] in ("r", "p")


def write_history(conn: psycopg.Connection, city: City, hours: int = 24, events_per_hour: int = 60, seed: int = 11, now: datetime | None = None) -> int:
    """Events over the last ``hours`` (terminal_event, plus event_hourly where ingest keeps it)."""
    rnd = random.Random(seed)
    now = now or datetime.now(timezone.utc)
    rows = []
    seq: dict[str, int] = {}
    for h in range(hours):
        for _ in range(events_per_hour):
            tm = rnd.choice(city.terminals)
            ts = now - timedelta(hours=h, seconds=rnd.uniform(0, 3600))
            kind = rnd.choices(KINDS, weights=(3, 3, 1, 2, 2))[0]
            tid = tm["terminal_id"]
            seq[tid] = seq.get(tid, 0) + 1
            g2, g1 = locate(city, tm["lat"], tm["lon"])
            body: dict = {}
            if kind.startswith("inspection"):
                body = {"inspection_id": f"I{rnd.randint(1, 99999)}", "entity_uscc": city.entities[rnd.randrange(len(city.entities))][0] if city.entities else "913600000000000000", "mode": "daily"}
                if kind == "inspection.completed":
                    body["result"] = rnd.choice(["compliant", "compliant", "rectify", "violation"])
            elif kind == "report":
                body = {"report_id": f"R{rnd.randint(1, 99999)}", "category": rnd.choices(CATEGORIES, weights=(5, 3, 2, 2, 1))[0], "text": "…"}
            else:
                body = {"patrol_id": f"PT{rnd.randint(1, 99999)}"}
            rows.append((ts, tid, seq[tid], kind, json.dumps(body, ensure_ascii=False), tm["lat"], tm["lon"], g2, g1, ts))
    with conn.transaction():
        with conn.cursor() as cur:
            with cur.copy("COPY terminal_event (ts, terminal_id, seq, kind, body, lat, lon, grid2_code, grid1_code, received_at) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
        if _rollup_is_table(conn):
            conn.execute(
                "INSERT INTO event_hourly (bucket, grid2_code, kind, n)"
                " SELECT date_trunc('hour', ts), coalesce(grid2_code, ''), kind, count(*) FROM terminal_event"
                " WHERE ts >= %s GROUP BY 1, 2, 3"
                " ON CONFLICT (bucket, grid2_code, kind) DO UPDATE SET n = EXCLUDED.n",
                (now - timedelta(hours=hours + 1),),
            )
    return len(rows)


def write_tracks(conn: psycopg.Connection, city: City, terminals: int = 5, minutes: int = 60, now: datetime | None = None) -> int:
    """One fix a minute over the last ``minutes`` for the first ``terminals`` terminals (gps_fix)."""
    now = now or datetime.now(timezone.utc)
    rows = []
    for tm in city.terminals[:terminals]:
        lat, lon = tm["lat"], tm["lon"]
        for i in range(minutes):
            ts = now - timedelta(minutes=minutes - i)
            lat += 0.0004 * math.sin(i / 7)
            lon += 0.0005 * math.cos(i / 9)
            g2, g1 = locate(city, lat, lon)
            rows.append((ts, tm["terminal_id"], i, lat, lon, 80.0, g2, g1, ts))
    with conn.transaction():
        with conn.cursor() as cur:
            with cur.copy("COPY gps_fix (ts, terminal_id, seq, lat, lon, battery_pct, grid2_code, grid1_code, received_at) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
    return len(rows)


class LiveFleet:
    """Live terminal state in Redis, in the shape ingest writes (docs/architecture.md)."""

    def __init__(self, city: City, r: redis_lib.Redis, prefix: str, tz: str = "Asia/Shanghai", seed: int = 3):
        self.city, self.r, self.keys, self.tz = city, r, RedisKeys(prefix), tz
        self.rnd = random.Random(seed)
        self.state = {tm["terminal_id"]: [tm["lat"], tm["lon"], self.rnd.uniform(0, 360), 0] for tm in city.terminals}
        self.offline = set(list(self.state)[-max(1, len(self.state) // 25):])  # ~4 % offline
        self.stale = set(list(self.state)[-max(2, len(self.state) // 10): -max(1, len(self.state) // 25)])

    def step(self, now: float | None = None) -> None:
        """Move every terminal a few metres and write one batch (as ingest would)."""
        from zoneinfo import ZoneInfo

        now = now or time.time()
        day = datetime.fromtimestamp(now, ZoneInfo(self.tz)).strftime("%Y-%m-%d")
        pipe = self.r.pipeline(transaction=False)
        last, seen = {}, {}
        for tid, st in self.state.items():
            if tid in self.offline:
                ts = now - 900
            elif tid in self.stale:
                ts = now - 90
            else:
                st[2] = (st[2] + self.rnd.uniform(-20, 20)) % 360
                d = 0.00004 * self.rnd.uniform(0.5, 1.5)
                st[0] += d * math.cos(math.radians(st[2]))
                st[1] += d * math.sin(math.radians(st[2]))
                ts = now
            st[3] += 1
            g2, g1 = locate(self.city, st[0], st[1])
            last[tid] = json.dumps({"lat": st[0], "lon": st[1], "ts": ts, "seq": st[3], "spd": 1.2, "hdg": round(st[2]), "bat": 80 - st[3] % 60, "acc": 5, "g2": g2, "g1": g1}, separators=(",", ":"))
            seen[tid] = ts
        pipe.hset(self.keys.last_fix, mapping=last)
        pipe.zadd(self.keys.last_seen, seen)
        pipe.hset(self.keys.session, mapping={tid: ("0" if tid in self.offline else "1") for tid in self.state})
        pipe.incr(self.keys.version)
        pipe.execute()
        self.day = day

    def counts(self, per_grid: dict[tuple[str, str], int], now: float | None = None) -> None:
        from zoneinfo import ZoneInfo

        day = datetime.fromtimestamp(now or time.time(), ZoneInfo(self.tz)).strftime("%Y-%m-%d")
        self.r.hset(self.keys.counters(day), mapping={f"{g}|{k}": n for (g, k), n in per_grid.items()})

    def clear(self) -> None:
        keys = list(self.r.scan_iter(match=self.keys.prefix + "*", count=1000))
        if keys:
            self.r.delete(*keys)
