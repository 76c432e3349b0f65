from dashboard.i18n import JS_KEYS, STRINGS, js_strings, t


def test_both_languages_have_every_key():
    zh, en = set(STRINGS["zh-CN"]), set(STRINGS["en"])
    assert zh == en, f"only zh-CN: {sorted(zh - en)}; only en: {sorted(en - zh)}"


def test_visible_strings_are_not_empty_and_differ():
    for key in STRINGS["en"]:
        if key in ("map.no_tiles", "unit.percent"):
            continue
        assert STRINGS["zh-CN"][key].strip() and STRINGS["en"][key].strip(), key
    assert t("title", "zh-CN") != t("title", "en")


def test_js_strings_come_from_the_table():
    assert set(js_strings("en")) == set(JS_KEYS)
    assert js_strings("zh-CN")["status.offline"] == "离线"


def test_every_key_used_in_code_exists():
    """Every literal t("...") key in dashboard/ is in the table."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "dashboard"
    used = set()
    for f in root.rglob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]*[a-z0-9_])["']\s*[,)]""", f.read_text()))
    missing = sorted(k for k in used if k not in STRINGS["en"])
    assert not missing, missing
