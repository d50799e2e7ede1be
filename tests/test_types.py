import pytest

from bbedit.errors import InvalidEdit
from bbedit.types import Edit


def test_edit_defaults_and_round_trip() -> None:
    e = Edit(subject=" Acme ", prompt="The CEO of Acme is", target_new="Jane Doe", aliases=["Acme Corp", "Acme"])
    assert e.subject == "Acme"
    assert e.aliases == ("Acme Corp",)  # the subject itself is not repeated as an alias
    assert e.id.startswith("e_") and e.created_at.endswith("+00:00")
    assert Edit.from_dict(e.to_dict()) == e


@pytest.mark.parametrize(
    "bad",
    [
        {"subject": "", "prompt": "p", "target_new": "t"},
        {"subject": "s", "prompt": "p", "target_new": "   "},
        {"subject": "s", "prompt": 3, "target_new": "t"},
        {"subject": "s", "prompt": "p", "target_new": "t", "aliases": "Acme"},
        {"subject": "s", "prompt": "p", "target_new": "t", "aliases": [1]},
        {"subject": "s", "prompt": "p"},
        {"subject": "s", "prompt": "p", "target_new": "t", "colour": "red"},
    ],
)
def test_malformed_edits_are_refused(bad: dict) -> None:
    with pytest.raises(InvalidEdit):
        Edit.from_dict(bad)


def test_from_dict_rejects_non_objects() -> None:
    with pytest.raises(InvalidEdit, match="JSON object"):
        Edit.from_dict(["subject"])  # type: ignore[arg-type]
