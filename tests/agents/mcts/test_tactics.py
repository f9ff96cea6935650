"""The tactic grammar built from a proof state (issue 38): Coq's printed goals parsed, Search's output ranked, and
the grammar checked with llguidance over a byte tokenizer: what exists at the state can be named, nothing else."""

from __future__ import annotations

import pytest

from ponder.agents.mcts._tactics import accepts, parse_search, parse_state, rank_lemmas, tactic_grammar

SHOW = """2 goals

  b : bool
  H, H' : b = true
  ============================
  forall (c : bool) (l : list nat), negb (negb b) = andb b c

goal 2 is:
 true = true
"""


def test_the_state_is_read_from_coqs_goals() -> None:
    state = parse_state(SHOW)
    assert state.hypotheses == ["b", "H", "H'"]
    assert state.variables == ["c", "l"]  # still quantified: `induction l` introduces it
    assert state.constants == ["bool", "true", "list", "nat", "negb", "andb"]
    assert state.goal.startswith("forall (c : bool)")
    assert parse_state("No more goals.").goal == ""


def test_search_output_is_parsed_and_ranked_by_the_goals_constants() -> None:
    output = (
        "negb_involutive: forall b : bool, negb (negb b) = b\n"
        "andb_true_r: forall b : bool, andb b true = b\n"
        "andb_negb_r:\n  forall b : bool, andb b (negb b) = false\n"
        "Bool.negb_sym: forall b b' : bool, b' = negb b -> b = negb b'\n"
    )
    found = parse_search(output)
    assert found[2] == ("andb_negb_r", "forall b : bool, andb b (negb b) = false")
    ranked = rank_lemmas(found, ["negb", "andb", "true"])
    assert ranked[:2] == ["andb_true_r", "andb_negb_r"]  # three and two constants of the goal, before one
    assert "negb_sym" in ranked and len(rank_lemmas(found, ["negb"], limit=2)) == 2


@pytest.mark.parametrize(
    ("tactic", "ok"),
    [
        ("destruct b; reflexivity.", True),
        ("intros c l. rewrite H. apply negb_involutive.", True),
        ("- simpl. reflexivity.", True),
        ("induction l as [|x l IHl]; simpl; auto.", True),
        ("rewrite <- H' in H.", True),
        ("apply (andb_true_r b).", True),
        ("unfold negb.", True),
        ("rewrite foo.", False),  # no such lemma or hypothesis here
        ("induction n.", False),  # no n at this state
        ("exact I.", False),
        ("reflexivity", False),  # a sentence ends with a period
        ("Qed.", False),
    ],
)
def test_the_grammar_names_only_what_exists_at_the_state(tactic: str, ok: bool) -> None:
    grammar = tactic_grammar(parse_state(SHOW), ["negb_involutive", "andb_true_r"])
    assert accepts(grammar, tactic) is ok


def test_a_state_with_nothing_to_name_still_has_a_grammar() -> None:
    grammar = tactic_grammar(parse_state("1 goal\n\n  ============================\n  True\n"), [])
    assert accepts(grammar, "trivial.") and accepts(grammar, "intros x.")
    assert not accepts(grammar, "apply foo.")
