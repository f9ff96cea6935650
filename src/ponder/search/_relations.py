"""Relation names: the aliases people and datasets use, mapped to a few canonical relations with inverses."""

from __future__ import annotations

from ponder.search._text import relation_key

# canonical relation -> the keys (see relation_key) that mean it
_ALIASES: dict[str, tuple[str, ...]] = {
    "is_a": ("is_a", "isa", "hypernym", "instance_hypernym", "instance_of", "type_of", "kind_of", "subclass_of",
             "is_an", "is_kind_of", "is_type_of", "is_a_kind_of", "is_a_type_of", "a_kind_of", "category"),
    "has_kind": ("hyponym", "instance_hyponym", "has_kind", "has_instance", "has_subtype", "has_type"),
    "part_of": ("part_of", "part_holonym", "member_holonym", "substance_holonym", "member_of", "is_part_of",
                "located_in", "in", "holonym"),
    "has_part": ("has_part", "has_a", "part_meronym", "member_meronym", "substance_meronym", "has_member",
                 "meronym", "contains", "made_of", "has_parts"),
    "antonym": ("antonym", "opposite_of", "is_opposite_of", "opposite"),
    "synonym": ("synonym", "same_as", "similar_to", "is_synonym_of", "also_known_as"),
    "related_to": ("derivationally_related", "related_to", "pertainym", "derived_from", "derived_from_adjective",
                   "also_see", "verb_group", "attribute"),
    "causes": ("causes", "cause", "leads_to", "results_in"),
    "entails": ("entailment", "entails"),
    "at_location": ("at_location", "location", "found_in", "lives_in", "located_at"),
    "used_for": ("used_for", "is_used_for", "purpose"),
    "capable_of": ("capable_of", "can"),
    "has_property": ("has_property", "property", "is"),
}  # fmt: skip
_CANONICAL = {alias: canon for canon, aliases in _ALIASES.items() for alias in aliases}
INVERSE = {"is_a": "has_kind", "has_kind": "is_a", "part_of": "has_part", "has_part": "part_of"}
SYMMETRIC = frozenset({"antonym", "synonym", "related_to"})
# the relations that hold transitively (a chain of them supports the relation, a little less per step)
TRANSITIVE = frozenset({"is_a", "has_kind", "part_of", "has_part"})


def canonical(relation: str) -> str:
    """The canonical name of a relation, or its normalised key when it has none (``capital of`` -> ``capital_of``)."""
    key = relation_key(relation)
    if key in _CANONICAL:
        return _CANONICAL[key]
    for prefix in ("is_", "has_", "are_"):  # "is_located_in" -> "located_in"
        if key.startswith(prefix) and key[len(prefix) :] in _CANONICAL:
            return _CANONICAL[key[len(prefix) :]]
    return key


def negated(relation: str) -> tuple[str, bool]:
    """``NotIsA`` / ``not is a`` -> (``is_a``, True)."""
    key = relation_key(relation)
    for prefix in ("not_", "is_not_", "does_not_", "cannot_"):
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            return canonical("capable_of" if prefix == "cannot_" else rest), True
    return canonical(relation), False


def relation_words(relation: str) -> list[str]:
    """The content words of a relation name, for matching it against passages (``capital_of`` -> [capital])."""
    key = relation_key(relation)
    return [w for w in key.split("_") if w not in {"is", "a", "an", "of", "has", "the", "in", "to", "at", "for"}]
