"""What a simulated student sends: a well-formed answer read from the STUDENT view alone (no keys)."""

from __future__ import annotations

from typing import Any

ADAPTIVE = ("SECTION_READING", "SECTION_LISTENING")


def answer_for(item: dict[str, Any]) -> dict[str, Any]:
    """A well-formed answer to an objective item of the STUDENT view (the load generator holds no keys)."""
    content = item.get("content", {})
    if content.get("options"):
        return {"choiceIndex": len(item["itemId"]) % len(content["options"])}
    if content.get("slots"):
        return {"completions": {"values": ["e" * s.get("missingLetters", 0) for s in content["slots"]]}}
    if content.get("wordBank"):
        return {"wordSequence": {"values": content["wordBank"]}}
    raise ValueError(f"{item['itemId']} ({item['taskType']}) is not objective")


def objective(module: dict[str, Any], item: dict[str, Any]) -> bool:
    """Whether `answer_for` can answer `item` of `module`: the adaptive sections and Build a Sentence."""
    return module["section"] in ADAPTIVE or item["taskType"] == "TASK_TYPE_BUILD_A_SENTENCE"
