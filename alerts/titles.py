"""Alert titles in the wall's language (Settings.language). Names and references inside them
are terminal or user data: the wall shows titles as text, never as HTML."""

from __future__ import annotations

TITLES = {
    "zh-CN": {
        "sos": "SOS 紧急求助 · {who}",
        "offline": "终端离线 · {who}（{mins} 分钟无信号）",
        "outside_grid": "离开责任网格 · {who}（当前 {grid}）",
        "serious_report": "严重问题上报 · {who} · {ref}",
        "serious_inspection": "检查发现严重违法 · {who} · {ref}",
        "surge": "投诉举报激增 · {grid}（近一小时 {n} 件）",
        "low_battery": "终端电量低 · {who}（{pct}%）",
    },
    "en": {
        "sos": "SOS · {who}",
        "offline": "Terminal offline · {who} ({mins} min silent)",
        "outside_grid": "Outside assigned grid · {who} (now {grid})",
        "serious_report": "Serious report · {who} · {ref}",
        "serious_inspection": "Serious violation found · {who} · {ref}",
        "surge": "Report surge · {grid} ({n} in the last hour)",
        "low_battery": "Low battery · {who} ({pct}%)",
    },
}


def title(lang: str, key: str, **values) -> str:
    template = TITLES.get(lang, TITLES["en"])[key]
    return template.format(**{k: str(v)[:120] for k, v in values.items()})[:300]
