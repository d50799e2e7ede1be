import pytest

from bbedit.editors import make_editor
from bbedit.editors.ike import IKEConfig, IKEEditor, fact_sentence
from bbedit.errors import ConfigError
from bbedit.types import Edit

EDIT = Edit(subject="Acme", prompt="The CEO of Acme is", target_new="Jane Doe", target_old="John Roe")
Q = [{"role": "user", "content": "Who runs Acme?"}]


def test_fact_sentence() -> None:
    assert fact_sentence(EDIT) == "The CEO of Acme is Jane Doe."
    q = Edit(subject="Acme", prompt="Who is the CEO of Acme?", target_new="Jane Doe")
    assert fact_sentence(q) == "Who is the CEO of Acme? Jane Doe."


def test_fact_mode_adds_one_system_message_and_keeps_the_question() -> None:
    msgs = IKEEditor(mode="fact").build_messages(Q, EDIT)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "The CEO of Acme is Jane Doe." in msgs[0]["content"]
    assert "John Roe" not in msgs[0]["content"]  # naming the old answer invites the model to repeat it
    assert msgs[1] == Q[0]
    # an existing system prompt is kept, after the fact
    msgs = IKEEditor(mode="fact").build_messages([{"role": "system", "content": "Be brief."}, *Q], EDIT)
    assert msgs[0]["content"].endswith("Be brief.") and len(msgs) == 2


def test_ike_mode_uses_balanced_demonstrations(embedder) -> None:  # type: ignore[no-untyped-def]
    ed = IKEEditor(mode="ike", n_demos=6, embedder=embedder)
    msgs = ed.build_messages(Q, EDIT)
    assert msgs[0]["role"] == "system"
    shots = msgs[1:-1]
    assert len(shots) == 12 and [m["role"] for m in shots[:2]] == ["user", "assistant"]
    kinds = [d["kind"] for d in ed._select("Who runs Acme?")]
    assert sorted(kinds) == ["copy", "copy", "retain", "retain", "update", "update"]
    assert "New fact: The CEO of Acme is Jane Doe." in msgs[-1]["content"]
    assert "Who runs Acme?" in msgs[-1]["content"]
    assert Q == [{"role": "user", "content": "Who runs Acme?"}]  # input untouched


def test_config_validation_and_registry() -> None:
    with pytest.raises(ConfigError):
        IKEConfig(mode="telepathy")
    with pytest.raises(ConfigError):
        IKEConfig(n_demos=-1)
    with pytest.raises(ConfigError, match="unknown editor"):
        make_editor("nope")
    assert make_editor("ike").name == "ike"
    with pytest.raises(ConfigError, match="last message"):
        IKEEditor().build_messages([{"role": "assistant", "content": "hi"}], EDIT)
