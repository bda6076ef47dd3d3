"""The UI text of every language: the message catalogues (``web/static/i18n/{tag}.json``), the
CLDR plural categories each language needs, and choosing a message's form by a count.

The pages' scripts choose plural forms with ``Intl.PluralRules``; what the server renders (the
expiry choices, the mailed verification code) uses the same CLDR rules, written out here for
whole numbers (the only counts the server shows). A browser test holds them against
Chromium's ``Intl.PluralRules``. A language without rules here uses English's.

A catalogue is a JSON object of message keys. A message is a string with ``{name}``
placeholders, a list (structured text), or an object of plural forms keyed by CLDR category
(``zero``, ``one``, ``two``, ``few``, ``many``, ``other``) and chosen by ``count``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CATALOGUE_DIR",
    "DEFAULT_LANGUAGE",
    "PLURAL_CATEGORIES",
    "Catalogue",
    "load_catalogues",
    "plural_categories",
    "plural_category",
]

CATALOGUE_DIR = Path(__file__).parent / "web" / "static" / "i18n"
DEFAULT_LANGUAGE = "en"
PLACEHOLDER = re.compile(r"\{(\w+)\}")

_Rule = Callable[[int], str]


def _one_other(n: int) -> str:
    return "one" if n == 1 else "other"


def _other(n: int) -> str:
    return "other"


def _million_many(one: Callable[[int], bool]) -> _Rule:
    # es, fr, it, pt: "many" is a whole million ("1 000 000 de vues"); CLDR 42 and later.
    def rule(n: int) -> str:
        if one(n):
            return "one"
        return "many" if n != 0 and n % 1_000_000 == 0 else "other"

    return rule


def _slavic(one: Callable[[int], bool]) -> _Rule:
    # pl and uk for whole numbers: 2-4 (not 12-14) are "few", the rest but "one" are "many".
    def rule(n: int) -> str:
        if one(n):
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"

    return rule


def _arabic(n: int) -> str:
    if n in (0, 1, 2):
        return ("zero", "one", "two")[n]
    if 3 <= n % 100 <= 10:
        return "few"
    if 11 <= n % 100 <= 99:
        return "many"
    return "other"


_RULES: dict[str, tuple[_Rule, tuple[str, ...]]] = {
    "en": (_one_other, ("one", "other")),
    "de": (_one_other, ("one", "other")),
    "nl": (_one_other, ("one", "other")),
    "tr": (_one_other, ("one", "other")),
    "es": (_million_many(lambda n: n == 1), ("one", "many", "other")),
    "it": (_million_many(lambda n: n == 1), ("one", "many", "other")),
    "fr": (_million_many(lambda n: n in (0, 1)), ("one", "many", "other")),
    "pt": (_million_many(lambda n: n in (0, 1)), ("one", "many", "other")),
    "pl": (_slavic(lambda n: n == 1), ("one", "few", "many", "other")),
    "uk": (_slavic(lambda n: n % 10 == 1 and n % 100 != 11), ("one", "few", "many", "other")),
    "ar": (_arabic, ("zero", "one", "two", "few", "many", "other")),
    "ja": (_other, ("other",)),
    "ko": (_other, ("other",)),
    "zh": (_other, ("other",)),
}

PLURAL_CATEGORIES: Mapping[str, tuple[str, ...]] = {k: v[1] for k, v in _RULES.items()}
"""The CLDR plural categories of each language with rules here (as ``Intl.PluralRules``'s
``resolvedOptions().pluralCategories`` lists them, in CLDR order)."""


def _rules_of(language: str) -> tuple[_Rule, tuple[str, ...]]:
    return _RULES.get(language.split("-")[0].lower(), _RULES[DEFAULT_LANGUAGE])


def plural_category(language: str, count: int) -> str:
    """The CLDR plural category of the whole number ``count`` in ``language``."""
    return _rules_of(language)[0](abs(count))


def plural_categories(language: str) -> tuple[str, ...]:
    """Every plural category a message in ``language`` must have."""
    return _rules_of(language)[1]


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The UI text of one language (``static/i18n/{language}.json``)."""

    language: str
    messages: Mapping[str, Any]

    @property
    def direction(self) -> str:
        """``rtl`` or ``ltr``: the writing direction of the language (``meta.dir``)."""
        return "rtl" if self.messages.get("meta.dir") == "rtl" else "ltr"

    @property
    def name(self) -> str:
        """The language's name in itself ("Deutsch"), for the language picker."""
        return str(self.messages.get("meta.language_name", self.language))

    def t(self, key: str, /, count: int | None = None, **values: object) -> str:
        """The message ``key`` with ``{name}`` placeholders filled in.

        A message with plural forms is chosen by ``count`` with the language's CLDR rules
        (``other`` when the form is missing).
        """
        message = self.messages[key]
        if isinstance(message, dict):
            form = plural_category(self.language, count or 0)
            message = message.get(form, message["other"])
        if count is not None:
            values["count"] = count
        return PLACEHOLDER.sub(
            lambda m: str(values[m[1]]) if m[1] in values else m[0],
            str(message),
        )

    def raw(self, key: str) -> Any:
        """A structured message (a list of sections, for example) as it is in the file."""
        return self.messages[key]


def load_catalogues(root: Path = CATALOGUE_DIR) -> dict[str, Catalogue]:
    """Every catalogue under ``root``, keyed by language tag (the file's name: ``pt-BR``)."""
    catalogues = {}
    for file in sorted(root.glob("*.json")):
        catalogues[file.stem] = Catalogue(file.stem, json.loads(file.read_text("utf-8")))
    if DEFAULT_LANGUAGE not in catalogues:
        raise LookupError(f"the {DEFAULT_LANGUAGE} catalogue is missing from {root}")
    return catalogues
