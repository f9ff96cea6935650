"""Fixtures of the search tests: a small real WordNet (a closure of a few words), the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.search._wordnet import DEFAULT_WORDNET_DIR, Morphy, Synset, synset_closure

SEED_WORDS = ["dog", "cat", "Paris", "France", "hot", "cold", "car", "elephant", "big", "large", "goose", "oak"]
UPWARD = frozenset({"hypernym", "instance_hypernym", "part_holonym", "member_holonym", "antonym"})


@pytest.fixture(scope="session")
def wordnet_dir() -> Path:
    if not (DEFAULT_WORDNET_DIR / "data.noun").is_file():
        pytest.fail("WordNet is not installed: run `apt-get install wordnet-base` (scripts/setup.sh does)")
    return DEFAULT_WORDNET_DIR


@pytest.fixture(scope="session")
def small_wordnet(wordnet_dir: Path) -> list[Synset]:
    """The synsets of SEED_WORDS and all their ancestors, holonyms and antonyms: real WordNet, ~1k synsets."""
    return synset_closure(wordnet_dir, SEED_WORDS, UPWARD, max_synsets=3000)


@pytest.fixture(scope="session")
def morphy(wordnet_dir: Path) -> Morphy:
    return Morphy.from_dir(wordnet_dir)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = Path(__file__).resolve().parents[2] / ".." / "shared"
    if not path.is_dir():
        pytest.fail(f"the shared data folder is missing: expected it at {path.resolve()}")
    return path
