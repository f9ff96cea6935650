"""The search tree: nodes with visit counts and values, UCT/PUCT selection with virtual loss, backpropagation,
the final-answer rules, and a JSON form for drawing (streamed as ``TreeUpdated`` events)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Selection = Literal["uct", "puct"]


class FinalRule(StrEnum):
    """How the one answer of a search is chosen from its tree."""

    most_visited = "most_visited"  # descend by visit count (robust child), take the deepest answer on that path
    best_value = "best_value"  # the answer-bearing node with the highest own reward
    verified = "verified"  # a node the domain verified (all visible tests, proof checked); else best_value
    vote = "vote"  # rStar-style: terminal answers grouped, each group weighted by its nodes' rewards


@dataclass
class Node:
    id: int
    parent: Node | None
    state: Any
    action: str = ""
    prior: float = 1.0
    depth: int = 0
    children: list[Node] = field(default_factory=list)
    visits: int = 0
    value_sum: float = 0.0
    virtual: int = 0
    reward: float = 0.0
    terminal: bool = False
    verified: bool = False
    answer: Any = None
    reason: str = ""
    reflection: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    expanded: bool = False
    in_flight: bool = False
    exhausted: bool = False

    @property
    def value(self) -> float:
        """Mean backed-up reward, counting in-flight virtual visits as losses (reward 0)."""
        n = self.visits + self.virtual
        return self.value_sum / n if n else 0.0

    def path(self) -> list[Node]:
        out: list[Node] = []
        node: Node | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out[::-1]


class Tree:
    def __init__(self, root_state: Any, *, rng: random.Random) -> None:
        self.nodes: list[Node] = []
        self.rng = rng
        self.root = self.add(None, root_state)

    def add(self, parent: Node | None, state: Any, *, action: str = "", prior: float = 1.0) -> Node:
        node = Node(
            id=len(self.nodes),
            parent=parent,
            state=state,
            action=action,
            prior=prior,
            depth=0 if parent is None else parent.depth + 1,
        )
        self.nodes.append(node)
        if parent is not None:
            parent.children.append(node)
        return node

    # --- selection -------------------------------------------------------------------------------------------

    def score(self, parent: Node, child: Node, c: float, how: Selection) -> float:
        n_parent = max(parent.visits + parent.virtual, 1)
        n_child = child.visits + child.virtual
        if how == "uct":
            if n_child == 0:
                return math.inf
            return child.value + c * math.sqrt(math.log(n_parent) / n_child)
        return child.value + c * child.prior * math.sqrt(n_parent) / (1 + n_child)

    def select(self, c: float, how: Selection, max_depth: int, max_children: int = 0) -> Node | None:
        """The most promising node that can still be expanded and is not already being expanded, or None.

        A node whose children are all dead ends is expanded again (with fresh samples, told what failed) while it
        has fewer than ``max_children`` children, so one unlucky expansion does not end the search.
        """
        return self._select(self.root, c, how, max_depth, max_children)

    def _select(self, node: Node, c: float, how: Selection, max_depth: int, max_children: int) -> Node | None:
        if node.exhausted or node.in_flight:
            return None
        if node.terminal or node.depth >= max_depth:
            self._mark_exhausted(node, max_children)
            return None
        if not node.expanded:
            return node
        ranked = sorted(
            (ch for ch in node.children if not ch.exhausted),
            key=lambda ch: (self.score(node, ch, c, how), self.rng.random()),
            reverse=True,
        )
        for child in ranked:
            found = self._select(child, c, how, max_depth, max_children)
            if found is not None:
                return found
        if all(ch.exhausted for ch in node.children):
            if len(node.children) < max_children:
                return node
            self._mark_exhausted(node, max_children)
        return None

    def _mark_exhausted(self, node: Node, max_children: int) -> None:
        node.exhausted = True
        parent = node.parent
        while parent is not None and parent.expanded and all(ch.exhausted for ch in parent.children):
            if len(parent.children) < max_children:
                break  # it can still be expanded again
            parent.exhausted = True
            parent = parent.parent

    def add_virtual_loss(self, leaf: Node, amount: int) -> None:
        leaf.in_flight = True
        for node in leaf.path():
            node.virtual += amount

    def remove_virtual_loss(self, leaf: Node, amount: int) -> None:
        leaf.in_flight = False
        for node in leaf.path():
            node.virtual -= amount

    def backpropagate(self, node: Node, reward: float) -> None:
        for n in node.path():
            n.visits += 1
            n.value_sum += reward

    # --- the final answer ------------------------------------------------------------------------------------

    def choose(self, rule: FinalRule) -> Node | None:
        candidates = [n for n in self.nodes if n.answer is not None]
        if not candidates:
            return None
        if rule is FinalRule.verified:
            verified = [n for n in candidates if n.verified]
            if verified:
                return max(verified, key=lambda n: (n.reward, n.visits, -n.id))
        if rule is FinalRule.most_visited:
            node = self.root
            best_on_path = node if node.answer is not None else None
            while node.children:
                node = max(node.children, key=lambda n: (n.visits, n.reward, -n.id))
                if node.answer is not None:
                    best_on_path = node
            if best_on_path is not None:
                return best_on_path
        if rule is FinalRule.vote:
            groups: dict[str, list[Node]] = {}
            for n in candidates:
                groups.setdefault(repr(n.answer), []).append(n)
            best_group = max(groups.values(), key=lambda g: (sum(n.reward for n in g), len(g), -min(n.id for n in g)))
            return max(best_group, key=lambda n: (n.reward, n.visits, -n.id))
        return max(candidates, key=lambda n: (n.reward, n.visits, -n.id))

    # --- serialisation ---------------------------------------------------------------------------------------

    def to_dict(self, *, chosen: Node | None = None, max_chars: int = 400) -> dict[str, Any]:
        return {
            "root": self.root.id,
            "chosen": chosen.id if chosen is not None else None,
            "nodes": [
                {
                    "id": n.id,
                    "parent": n.parent.id if n.parent is not None else None,
                    "depth": n.depth,
                    "action": n.action[:max_chars],
                    "visits": n.visits,
                    "value": round(n.value_sum / n.visits, 4) if n.visits else 0.0,
                    "reward": round(n.reward, 4),
                    "prior": round(n.prior, 4),
                    "terminal": n.terminal,
                    "verified": n.verified,
                    "answer": _jsonable(n.answer),
                    "reason": n.reason[:max_chars],
                    "reflection": (n.reflection or "")[:max_chars] or None,
                    "info": n.info,
                }
                for n in self.nodes
            ],
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
