"""Synthetic people and market entities for the demo city: names, phones, industries, risk.

Plausible, not real: common surnames and given-name characters, phone numbers, entity names in
the usual patterns (个体户 "X记…店", 企业 "鹰潭市…有限公司", 合作社 "…专业合作社"). Every record made
here is flagged synthetic by its caller. Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
            "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤桂")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文辉玲燕红斌鹏飞俊峰海波宇浩凯慧佳琴云"
         "晨欣怡志新春林荣德福贵祥瑞鑫晓梅兰萍雪亮成龙旭东阳光")
BRANDS = ("福满", "恒盛", "鑫源", "兴旺", "佳和", "金信", "永安", "华联", "惠民", "百姓", "昌盛", "利民", "天和",
          "顺发", "聚丰", "好又多", "如意", "嘉禾", "龙泉", "信江", "龙虎", "丰收", "春晖", "瑞祥", "宏达", "万家")
ROADS = ("人民路", "胜利路", "站江路", "交通路", "林荫路", "环城路", "解放路", "建设路", "湖西路", "沿江路",
         "信江大道", "龙虎山大道", "鹰东大道", "梅园大道", "府前路", "新华路", "文化路", "工业路", "商贸街", "老街")


@dataclass(frozen=True, slots=True)
class Industry:
    key: str
    weight: float
    shop_nouns: tuple[str, ...]  # individual business names end with one of these
    company_word: str  # enterprise names: 鹰潭市{brand}{company_word}有限公司
    food: float  # probability of each licence flag
    drug: float
    special_equipment: float
    risk: tuple[float, float, float, float]  # P(A), P(B), P(C), P(D)


INDUSTRIES = (
    Industry("catering", 22, ("餐馆", "小吃店", "面馆", "饭店", "快餐店", "烧烤店", "早餐店"), "餐饮管理", 1, 0, 0.05, (.25, .40, .25, .10)),
    Industry("food_retail", 20, ("便利店", "食品店", "副食店", "超市", "水果店", "粮油店"), "商贸", 1, 0, 0.02, (.35, .40, .18, .07)),
    Industry("food_production", 4, ("食品厂", "粮油加工坊", "豆制品坊", "糕点坊"), "食品", 1, 0, 0.25, (.15, .35, .32, .18)),
    Industry("pharmacy", 4, ("大药房", "药店", "诊所药房"), "医药连锁", 0, 1, 0, (.25, .40, .25, .10)),
    Industry("medical_device", 1.5, ("医疗器械店", "眼镜店"), "医疗器械", 0, 0, 0, (.30, .40, .22, .08)),
    Industry("property_elevator", 2.5, ("物业服务部",), "物业管理", 0, 0, 1, (.30, .40, .20, .10)),
    Industry("hotel", 3, ("宾馆", "旅馆", "民宿"), "酒店管理", 0.6, 0, 0.4, (.35, .40, .18, .07)),
    Industry("cosmetics", 3, ("化妆品店", "美容用品店"), "化妆品贸易", 0, 0, 0, (.40, .38, .16, .06)),
    Industry("agri_inputs", 4, ("农资店", "种子店", "兽药店"), "农资", 0, 0.1, 0, (.30, .38, .22, .10)),
    Industry("fuel", 1, ("加油站", "液化气站"), "能源", 0, 0, 0.8, (.20, .35, .30, .15)),
    Industry("general_retail", 35, ("五金店", "服装店", "日杂店", "手机店", "家电行", "建材店", "理发店"), "商贸", 0, 0, 0.01, (.50, .35, .12, .03)),
)
_IND_WEIGHTS = [i.weight for i in INDUSTRIES]
KINDS = (("individual_business", 0.70), ("enterprise", 0.27), ("farmer_coop", 0.03))
COOP_CROPS = ("蔬菜种植", "水稻种植", "生猪养殖", "水产养殖", "茶叶", "油茶", "果业", "中药材种植", "食用菌")


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def phone(rng: random.Random) -> str:
    return "1" + rng.choice(("33", "35", "37", "38", "39", "58", "77", "80", "86", "89")) + f"{rng.randrange(10**8):08d}"


def pick_kind(rng: random.Random) -> str:
    return rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]


def pick_industry(rng: random.Random, kind: str) -> Industry:
    if kind == "farmer_coop":
        return next(i for i in INDUSTRIES if i.key in ("agri_inputs",)) if rng.random() < 0.2 else \
            next(i for i in INDUSTRIES if i.key == "food_production")
    return rng.choices(INDUSTRIES, weights=_IND_WEIGHTS)[0]


def entity_name(rng: random.Random, kind: str, ind: Industry, county: str, place: str) -> str:
    """A plausible entity name; ``county`` like 余江区, ``place`` a village or town stem."""
    if kind == "enterprise":
        return f"鹰潭市{rng.choice(BRANDS)}{ind.company_word}有限公司"
    if kind == "farmer_coop":
        return f"{county}{place}{rng.choice(COOP_CROPS)}专业合作社"
    style = rng.random()
    noun = rng.choice(ind.shop_nouns)
    if style < 0.4:
        return f"{county}{rng.choice(SURNAMES)}记{noun}"
    if style < 0.7:
        return f"{county}{place}{rng.choice(BRANDS)}{noun}"
    return f"{county}{rng.choice(BRANDS)}{noun}"


def address(rng: random.Random, county: str, township: str, village: str) -> str:
    road = rng.choice(ROADS) if rng.random() < 0.6 else f"{village}组"
    return f"江西省鹰潭市{county}{township}{village}{road}{rng.randint(1, 399)}号"


def registered_on(rng: random.Random) -> dt.date:
    # skewed towards recent years, as registrations grew after the 2014 commercial reform
    year = 2024 - int(rng.triangular(0, 30, 0))
    return dt.date(year, rng.randint(1, 12), rng.randint(1, 28))


def risk_level(rng: random.Random, ind: Industry) -> str:
    return rng.choices("ABCD", weights=ind.risk)[0]
