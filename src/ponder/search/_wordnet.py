"""WordNet 3.0 read straight from its database files (Debian's ``wordnet-base``: ``/usr/share/wordnet``).

Hand-written because the one well-kept reader (nltk's) needs a ``lexnames`` file that Debian's package does not
ship and pulls in a large dependency; the ``data.*`` format (wndb(5WN)) is small and stable since 2006. The
lemmatiser follows WordNet's own ``morphy`` (wnmorph(7WN)): exception lists, then detachment rules, keeping only
forms that are lemmas of the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ponder.errors import ConfigError

DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

# Pointer symbols of wninput(5WN), per part of speech, named as the shared data names them.
_POINTERS_COMMON = {
    "!": "antonym",
    "@": "hypernym",
    "@i": "instance_hypernym",
    "~": "hyponym",
    "~i": "instance_hyponym",
    "#m": "member_holonym",
    "#s": "substance_holonym",
    "#p": "part_holonym",
    "%m": "member_meronym",
    "%s": "substance_meronym",
    "%p": "part_meronym",
    "=": "attribute",
    "+": "derivationally_related",
    ";c": "domain_topic",
    "-c": "member_of_domain_topic",
    ";r": "domain_region",
    "-r": "member_of_domain_region",
    ";u": "domain_usage",
    "-u": "member_of_domain_usage",
    "*": "entailment",
    ">": "cause",
    "^": "also_see",
    "$": "verb_group",
    "&": "similar_to",
    "<": "participle_of",
    "\\": "pertainym",
}

_DETACH = {
    "n": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
          ("ies", "y")],
    "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
}  # fmt: skip


@dataclass(frozen=True)
class Pointer:
    relation: str
    target: str  # synset id: pos letter + offset, e.g. "n08929922"
    source_word: int  # 0 = semantic (synset to synset); else 1-based lemma number in the source synset
    target_word: int


@dataclass(frozen=True)
class Synset:
    synset_id: str
    pos: str
    lemmas: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]
    pointers: tuple[Pointer, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.lemmas[0] if self.lemmas else self.synset_id

    def document_text(self) -> str:
        """The text a search index holds for this synset: lemmas, definition and examples."""
        parts = [", ".join(self.lemmas) + ":", self.definition]
        if self.examples:
            parts.append("Examples: " + "; ".join(f'"{e}"' for e in self.examples))
        return " ".join(parts)


def check_wordnet_dir(root: Path) -> None:
    missing = [f"data.{name}" for name in POS_FILES.values() if not (root / f"data.{name}").is_file()]
    if missing:
        raise ConfigError(
            f"WordNet database files not found in {root} (missing {', '.join(missing)})",
            hint="install Debian's WordNet with `apt-get install wordnet-base`, or point --wordnet-dir at a WordNet"
            " 3.0 dict folder",
        )


def _split_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    definition_parts: list[str] = []
    examples: list[str] = []
    for part in gloss.split("; "):
        part = part.strip()
        if len(part) >= 2 and part.startswith('"'):
            examples.append(part.strip('"').strip())
        elif part:
            definition_parts.append(part)
    return "; ".join(definition_parts), tuple(examples)


def parse_data_line(line: str) -> Synset:
    """One line of a ``data.*`` file (see wndb(5WN))."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    offset, ss_type = fields[0], fields[2]
    pos = "a" if ss_type == "s" else ss_type
    w_cnt = int(fields[3], 16)
    lemmas = []
    i = 4
    for _ in range(w_cnt):
        word = fields[i]
        if word.endswith(")") and "(" in word:  # adjective markers: (a), (p), (ip)
            word = word[: word.index("(")]
        lemmas.append(word.replace("_", " "))
        i += 2
    p_cnt = int(fields[i])
    i += 1
    pointers = []
    for _ in range(p_cnt):
        symbol, target_offset, target_pos, src_tgt = fields[i : i + 4]
        i += 4
        relation = _POINTERS_COMMON.get(symbol)
        if relation is None:
            continue
        if pos == "r" and symbol == "\\":
            relation = "derived_from_adjective"
        target_pos = "a" if target_pos == "s" else target_pos
        pointers.append(Pointer(relation, f"{target_pos}{target_offset}", int(src_tgt[:2], 16), int(src_tgt[2:], 16)))
    definition, examples = _split_gloss(gloss.strip())
    return Synset(f"{pos}{offset}", ss_type, tuple(lemmas), definition, examples, tuple(pointers))


def iter_synsets(root: Path = DEFAULT_WORDNET_DIR, pos: str | None = None) -> Iterator[Synset]:
    """Every synset of the database (or of one part of speech), in file order."""
    check_wordnet_dir(root)
    for letter, name in POS_FILES.items():
        if pos is not None and letter != pos:
            continue
        with (root / f"data.{name}").open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  ") or not line.strip():
                    continue  # licence header
                yield parse_data_line(line)


class Morphy:
    """WordNet's lemmatiser: base forms of a word that are lemmas of the database."""

    def __init__(self, lemmas: dict[str, set[str]], exceptions: dict[str, dict[str, list[str]]]) -> None:
        self._lemmas = lemmas  # pos -> set of lemmas (lower case, spaces)
        self._exceptions = exceptions  # pos -> inflected -> bases
        self._cache: dict[tuple[str, str | None], list[str]] = {}

    @classmethod
    def from_dir(cls, root: Path = DEFAULT_WORDNET_DIR) -> Morphy:
        check_wordnet_dir(root)
        lemmas: dict[str, set[str]] = {}
        exceptions: dict[str, dict[str, list[str]]] = {}
        for letter, name in POS_FILES.items():
            words: set[str] = set()
            with (root / f"index.{name}").open(encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if not line.startswith("  "):
                        words.add(line.split(" ", 1)[0].replace("_", " "))
            lemmas[letter] = words
            table: dict[str, list[str]] = {}
            exc = root / f"{name}.exc"
            if exc.is_file():
                with exc.open(encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        inflected, *bases = line.split()
                        table[inflected.replace("_", " ")] = [b.replace("_", " ") for b in bases]
            exceptions[letter] = table
        return cls(lemmas, exceptions)

    @classmethod
    def from_synsets(cls, synsets: list[Synset]) -> Morphy:
        """A lemmatiser over a subset of synsets, with detachment rules only (for tests and small corpora)."""
        lemmas: dict[str, set[str]] = {p: set() for p in POS_FILES}
        for s in synsets:
            lemmas["a" if s.pos == "s" else s.pos].update(lemma.lower() for lemma in s.lemmas)
        return cls(lemmas, {p: {} for p in POS_FILES})

    def is_lemma(self, word: str, pos: str | None = None) -> bool:
        word = word.lower()
        return any(word in self._lemmas.get(p, ()) for p in ([pos] if pos else POS_FILES))

    def base_forms(self, word: str, pos: str | None = None) -> list[str]:
        """Candidate lemmas for ``word``, the word itself first when it is one; empty when none is known."""
        cached = self._cache.get((word, pos))
        if cached is None:
            if len(self._cache) > 500_000:
                self._cache.clear()
            cached = self._cache[(word, pos)] = self._base_forms(word, pos)
        return list(cached)

    def _base_forms(self, word: str, pos: str | None) -> list[str]:
        word = " ".join(word.lower().split())
        out: list[str] = []
        for p in [pos] if pos else list(POS_FILES):
            known = self._lemmas.get(p, set())
            candidates = [*self._exceptions.get(p, {}).get(word, [])]
            candidates.insert(0, word)
            head, sep, last = word.rpartition(" ")
            for suffix, ending in _DETACH[p]:
                if last.endswith(suffix) and len(last) > len(suffix):
                    candidates.append(head + sep + last[: len(last) - len(suffix)] + ending)
            for c in candidates:
                if c in known and c not in out:
                    out.append(c)
        return out

    def lemma(self, word: str) -> str:
        """The first base form (noun, verb, adjective, adverb order), or the word itself."""
        forms = self.base_forms(word)
        return forms[0] if forms else " ".join(word.lower().split())


def read_synset(root: Path, synset_id: str) -> Synset:
    """One synset by id: the offset in its id is its byte offset in the ``data.*`` file."""
    pos, offset = synset_id[0], int(synset_id[1:])
    with (root / f"data.{POS_FILES[pos]}").open("rb") as fh:
        fh.seek(offset)
        return parse_data_line(fh.readline().decode("utf-8", errors="replace"))


def lookup_synset_ids(root: Path, word: str) -> list[str]:
    """The synset ids of a lemma, from the ``index.*`` files (most frequent sense first)."""
    key = "_".join(word.lower().split())
    out = []
    for letter, name in POS_FILES.items():
        with (root / f"index.{name}").open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(key + " "):
                    fields = line.split()
                    n_senses = int(fields[2])
                    out += [f"{letter}{off}" for off in fields[len(fields) - n_senses :]]
                    break
    return out


def synset_closure(root: Path, words: list[str], relations: frozenset[str], max_synsets: int = 2000) -> list[Synset]:
    """The synsets of ``words`` and every synset reachable from them along ``relations`` (a small real WordNet)."""
    check_wordnet_dir(root)
    todo = [sid for w in words for sid in lookup_synset_ids(root, w)]
    found: dict[str, Synset] = {}
    while todo and len(found) < max_synsets:
        sid = todo.pop(0)
        if sid in found:
            continue
        s = read_synset(root, sid)
        found[sid] = s
        todo += [p.target for p in s.pointers if p.relation in relations and p.target not in found]
    return list(found.values())
