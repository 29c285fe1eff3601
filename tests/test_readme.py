"""README's generated parts agree with the code they describe."""

from __future__ import annotations

from tests.conftest import ROOT
from tools import readme_models
from tracker.zoo import get_record, list_models


def test_readme_model_table_is_generated_from_the_model_records():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_models.replace_table(text) == text, "run python tools/readme_models.py"
    table = text.split(readme_models.START, 1)[1].split(readme_models.END, 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(list_models())
    nanotrack = next(row for row in rows if row.startswith("| `nanotrack-v2`"))
    assert "[Apache-2.0](" in nanotrack and "HonglinChu/SiamTrackers" in nanotrack
    assert get_record("siamrpnpp-r50").provenance.license == "CC-BY-SA-3.0"


def test_model_table_check_fails_on_a_stale_readme(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{readme_models.START}\n| old |\n{readme_models.END}\nrest\n")
    assert readme_models.main(["--readme", str(readme), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert readme_models.main(["--readme", str(readme)]) == 0
    assert readme_models.main(["--readme", str(readme), "--check"]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\nrest\n")
    assert text.count("\n| `") == len(list_models())
    readme.write_text("no markers")
    assert readme_models.main(["--readme", str(readme)]) == 2


def test_readme_lists_every_training_option():
    from tracker.train.cli import build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Training", 1)[1].split("\n## ", 1)[0]
    options = [o for action in build_parser()._actions for o in action.option_strings
               if o.startswith("--") and o not in ("--help", "--quiet")]
    assert len(options) >= 16
    assert [o for o in options if f"`{o}" not in section and f"{o}`" not in section
            and f"{o} " not in section] == []
