"""The catalogue check (docs/web.md, "Adding a language"), run on every catalogue in CI, and the
server's CLDR plural rules (``burnlink.i18n``).

Every catalogue has English's keys, the same kind of message for each, the same placeholders,
every plural form its language needs, no empty text, and no text identical to English unless
``tests/i18n/identical.json`` lists it as intended.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from burnlink.i18n import (
    CATALOGUE_DIR,
    PLACEHOLDER,
    PLURAL_CATEGORIES,
    load_catalogues,
    plural_categories,
    plural_category,
)

REQUIRED = {
    "en", "de", "fr", "es", "it", "pt-BR", "nl", "pl", "uk", "tr", "ja", "zh-CN", "ko", "ar"
}  # fmt: skip
RIGHT_TO_LEFT = {"ar"}
IDENTICAL = json.loads((Path(__file__).parent / "i18n" / "identical.json").read_text("utf-8"))
ENGLISH: dict[str, Any] = json.loads((CATALOGUE_DIR / "en.json").read_text("utf-8"))
TAGS = sorted(path.stem for path in CATALOGUE_DIR.glob("*.json"))
TRANSLATIONS = [tag for tag in TAGS if tag != "en"]
CATEGORIES = {"zero", "one", "two", "few", "many", "other"}


def _catalogue(tag: str) -> dict[str, Any]:
    text = (CATALOGUE_DIR / f"{tag}.json").read_text("utf-8")

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        repeated = {key for key in keys if keys.count(key) > 1}
        assert not repeated, f"{tag}.json repeats {sorted(repeated)}"
        return dict(pairs)

    loaded: dict[str, Any] = json.loads(text, object_pairs_hook=no_repeats)
    return loaded


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def _texts(value: Any) -> list[str]:
    """Every string inside a message (a structured one holds several)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def _shape(value: Any) -> Any:
    """A structured message's shape: lists and objects, with every string as ``str``."""
    if isinstance(value, list):
        return [_shape(item) for item in value]
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__


def test_every_required_language_has_a_catalogue() -> None:
    assert set(TAGS) >= REQUIRED


@pytest.mark.parametrize("tag", TAGS)
def test_catalogue_is_named_by_a_language_tag_and_says_its_direction(tag: str) -> None:
    catalogue = _catalogue(tag)

    assert re.fullmatch(r"[a-z]{2,3}(-[A-Z]{2}|-[A-Z][a-z]{3})?", tag)
    assert catalogue["meta.dir"] == ("rtl" if tag in RIGHT_TO_LEFT else "ltr")
    assert catalogue["meta.language_name"].strip()
    assert tag.split("-")[0] in PLURAL_CATEGORIES, f"no plural rules for {tag} in burnlink.i18n"


@pytest.mark.parametrize("tag", TRANSLATIONS)
def test_catalogue_has_the_keys_of_english(tag: str) -> None:
    catalogue = _catalogue(tag)

    assert sorted(set(ENGLISH) - set(catalogue)) == [], "missing"
    assert sorted(set(catalogue) - set(ENGLISH)) == [], "not in English"


@pytest.mark.parametrize("tag", TRANSLATIONS)
def test_messages_keep_the_placeholders_of_english(tag: str) -> None:
    catalogue = _catalogue(tag)
    wrong = []
    for key, english in ENGLISH.items():
        message = catalogue.get(key)
        if isinstance(english, str):
            if not isinstance(message, str) or _placeholders(message) != _placeholders(english):
                wrong.append(key)
        elif isinstance(english, dict):
            if not isinstance(message, dict):
                wrong.append(key)
                continue
            allowed = _placeholders(" ".join(english.values()))
            needed = allowed - {"count"}
            for form, text in message.items():
                if not needed <= _placeholders(text) <= allowed:
                    wrong.append(f"{key}.{form}")
            if "count" in _placeholders(english["other"]) and "count" not in _placeholders(
                message.get("other", "")
            ):
                wrong.append(f"{key}.other")
        else:
            if _shape(message) != _shape(english):
                wrong.append(key)
    assert wrong == []


@pytest.mark.parametrize("tag", TAGS)
def test_plural_messages_have_every_form_the_language_needs(tag: str) -> None:
    catalogue = _catalogue(tag)
    needed = set(plural_categories(tag))
    wrong = {}
    for key, message in catalogue.items():
        plural = isinstance(ENGLISH.get(key), dict) and isinstance(message, dict)
        if plural and set(message) != needed:
            wrong[key] = sorted(set(message) ^ needed)
    assert wrong == {}, f"forms for {tag}: {sorted(needed)}"


@pytest.mark.parametrize("tag", TAGS)
def test_no_message_is_empty(tag: str) -> None:
    catalogue = _catalogue(tag)

    empty = [key for key, value in catalogue.items() if any(not t.strip() for t in _texts(value))]
    assert empty == []


@pytest.mark.parametrize("tag", TRANSLATIONS)
def test_no_message_is_left_in_english_unless_intended(tag: str) -> None:
    catalogue = _catalogue(tag)
    intended = set(IDENTICAL["*"]) | set(IDENTICAL.get(tag, []))
    same = {
        key
        for key, english in ENGLISH.items()
        if set(_texts(catalogue.get(key))) & set(_texts(english))
    }

    assert sorted(same - intended) == [], "identical to English: translate, or list as intended"
    assert sorted(intended - same - set(IDENTICAL["*"])) == [], "listed but translated: unlist"


def test_the_allow_list_names_only_real_keys_and_languages() -> None:
    for tag, keys in IDENTICAL.items():
        if tag.startswith("_"):
            continue
        assert tag == "*" or tag in TRANSLATIONS, tag
        assert set(keys) <= set(ENGLISH), tag


def test_loaded_catalogues_match_the_files() -> None:
    assert sorted(load_catalogues()) == TAGS


# The server's plural rules (Chromium's Intl.PluralRules is held against them in
# tests/browser/test_languages.py)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", {0: "other", 1: "one", 2: "other", 21: "other"}),
        ("fr", {0: "one", 1: "one", 2: "other", 1_000_000: "many"}),
        ("pt-BR", {0: "one", 1: "one", 2: "other", 2_000_000: "many"}),
        ("es", {0: "other", 1: "one", 1_000_000: "many", 1_000_001: "other"}),
        ("pl", {1: "one", 2: "few", 5: "many", 12: "many", 22: "few", 21: "many", 112: "many"}),
        ("uk", {1: "one", 11: "many", 21: "one", 3: "few", 13: "many", 24: "few", 0: "many"}),
        ("ar", {0: "zero", 1: "one", 2: "two", 3: "few", 10: "few", 11: "many", 99: "many"}),
        ("ar", {100: "other", 102: "other", 103: "few", 111: "many"}),
        ("ja", {0: "other", 1: "other"}),
        ("xx", {1: "one", 2: "other"}),
    ],
)
def test_plural_category(language: str, expected: dict[int, str]) -> None:
    assert {n: plural_category(language, n) for n in expected} == expected


def test_server_chooses_the_plural_form_of_the_language() -> None:
    catalogues = load_catalogues()

    assert catalogues["pl"].t("duration.minutes", count=5) == "5 minut"
    assert catalogues["pl"].t("duration.minutes", count=2) == "2 minuty"
    assert catalogues["ar"].t("duration.days", count=2) == "يومان"
    assert catalogues["ar"].t("duration.days", count=7) == "7 أيام"
    assert catalogues["en"].t("duration.days", count=1) == "1 day"
