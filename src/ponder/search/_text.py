"""Text helpers shared by the index and the knowledge base: query terms, phrase keys, relation names."""

from __future__ import annotations

import re
from typing import Protocol, TypeVar

from ponder.errors import InputError

T = TypeVar("T")

MAX_QUERY_CHARS = 2000
MAX_QUERY_TERMS = 64

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# Function words dropped from keyword queries and phrase keys: they match most documents and carry no topic.
_STOPWORD_TEXT = """a an the of in on at to for from by with and or but is are was were be been being it its this
that these those as into than then there their they them he she his her we our you your i me my what which who whom
whose when where why how do does did not no so such can could would should will shall may might must has have had s t"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_ARTICLES = frozenset({"a", "an", "the"})


class Lemmatizer(Protocol):
    def base_forms(self, word: str, pos: str | None = None) -> list[str]: ...


def words(text: str) -> list[str]:
    return [m.group(0).lower() for m in _WORD.finditer(text)]


def query_terms(query: str) -> list[str]:
    """The keywords of a free-text query (stop words dropped unless nothing else is left), validated."""
    if not query or not query.strip():
        raise InputError("the search query is empty", hint="give a few keywords, e.g. 'capital of France'")
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(
            f"the search query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are accepted",
            hint="shorten the query to its key words",
        )
    tokens = words(query)
    content = [t for t in tokens if t not in STOPWORDS]
    terms = list(dict.fromkeys(content or tokens))[:MAX_QUERY_TERMS]
    if not terms:
        raise InputError(f"the search query {query!r} holds no words", hint="use letters or digits in the query")
    return terms


def simple_lemma(word: str) -> str:
    """A dictionary-free English singular, for when no WordNet is at hand."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ches", "shes", "sses", "xes", "zes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def phrase_key(phrase: str, lemmatizer: Lemmatizer | None = None) -> str:
    """A canonical form of a noun phrase: lower case, no articles or punctuation, each word lemmatised."""
    tokens = words(phrase)
    while len(tokens) > 1 and tokens[0] in _ARTICLES:
        tokens = tokens[1:]
    if not tokens:
        return " ".join(phrase.lower().split())
    whole = " ".join(tokens)
    if lemmatizer is None:
        return " ".join(simple_lemma(t) for t in tokens)
    forms = lemmatizer.base_forms(whole)  # multi-word lemmas ("united states") and irregular forms first
    if forms:
        return forms[0]
    return " ".join((lemmatizer.base_forms(t) or [t])[0] for t in tokens)


def relation_key(relation: str) -> str:
    """``IsA``, ``is a``, ``is-a`` and ``is_a`` all become ``is_a``."""
    spaced = _CAMEL.sub(" ", relation.strip())
    return "_".join(words(spaced.replace("-", " ").replace("_", " "))) or relation.strip().lower()


def candidates(k: int) -> int:
    """How many stemmed matches to fetch for ``k`` hits, so exact matches can be ranked first among them."""
    return min(max(50, 4 * k), 500)


def exact_first(candidates: list[tuple[T, str, str]], terms: list[str], k: int) -> list[T]:
    """The ``k`` best of ``candidates`` ((hit, title, text), in BM25 order), those that contain the query's words as
    written ranked first (in the title counting twice). Stemming makes "France" match "franc"; a person asking about
    France wants the pages that say France before the ones about the currency."""
    wanted = set(terms)

    def exact(title: str, text: str) -> int:
        return 2 * len(wanted & set(words(title))) + len(wanted & set(words(text)))

    ranked = sorted(enumerate(candidates), key=lambda pair: (-exact(pair[1][1], pair[1][2]), pair[0]))
    return [hit for _, (hit, _, _) in ranked[:k]]
