import random

from hypothesis import given, strategies as st

from grid import uscc

DIVISIONS = st.sampled_from(["360602", "360603", "360681", "110101"])
KINDS = st.sampled_from(sorted(uscc.KIND_PREFIX))


def test_published_examples_validate():
    for code in ("91350100M000100Y43", "911100001000080343", "91440300708461136T"):
        assert uscc.is_valid(code), code


def test_reasons():
    assert "18 characters" in uscc.validation_error("9135")
    assert "not allowed" in uscc.validation_error("91350100M000100YI3")  # I is not in the alphabet
    assert "expected '3'" in uscc.validation_error("91350100M000100Y44")


@given(st.integers(0, 2**32), DIVISIONS, KINDS)
def test_generated_codes_are_valid_and_well_formed(seed, division, kind):
    code = uscc.generate(random.Random(seed), division, kind)
    assert len(code) == 18 and uscc.is_valid(code)
    assert code[:2] == uscc.KIND_PREFIX[kind] and code[2:8] == division
    assert code[16] == uscc.org_code_check(code[8:16])


@given(st.integers(0, 2**32), st.integers(0, 16), st.sampled_from(uscc.ALPHABET))
def test_any_single_substitution_is_caught(seed, pos, ch):
    code = uscc.generate(random.Random(seed), "360602")
    changed = code[:pos] + ch + code[pos + 1 :]
    assert uscc.is_valid(changed) == (changed == code)


@given(st.text(alphabet=uscc.ALPHABET, min_size=17, max_size=17))
def test_check_char_completes_any_body(body):
    assert uscc.is_valid(body + uscc.check_char(body))
