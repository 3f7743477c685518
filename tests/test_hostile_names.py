"""Names that lie on screen: a run name with a newline, a NUL or a right-to-left override
(U+202E makes "abc\u202egnp.exe" read as "abcexe.png") is shown escaped wherever it is
displayed or published, so it can neither split a row nor reorder what a reader sees."""

import json

from harness.runs.index import printable
from harness.runs.provenance import CHECKPOINT_INFO
from helpers import first, scripted_eval
from vrbench.cli import main

HOSTILE = "abc\u202egnp.exe\nfake | row\x00\u2066x"
RAW = ("\u202e", "\x00", "\u2066", "\nfake")


def _run(tmp_path):
    ckpt = tmp_path / "checkpoints" / "ck"
    ckpt.mkdir(parents=True)
    (ckpt / CHECKPOINT_INFO).write_text(json.dumps({"name": HOSTILE, "trainer": "sft",
                                                    "step": 10, "epoch": 0.1, "seed": 0}))
    root = tmp_path / "results"
    scripted_eval(ckpt, root, first(8), first(2))
    return root


def test_printable_escapes_controls_and_bidi_only():
    assert printable(HOSTILE) == "abc\\u202egnp.exe\\nfake | row\\x00\\u2066x"
    assert printable("résumé 数学 ∠ABC") == "résumé 数学 ∠ABC"


def test_runs_shows_a_name_escaped_on_its_own_row(tmp_path, capsys):
    root = _run(tmp_path)
    assert main(["runs", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert not any(raw in out for raw in RAW)
    rows = [line for line in out.splitlines() if "gnp.exe" in line]
    assert len(rows) == 2 and all("abc\\u202egnp.exe\\nfake" in r for r in rows)


def test_the_leaderboard_publishes_names_escaped(tmp_path):
    root = _run(tmp_path)
    out = tmp_path / "board"
    assert main(["leaderboard", "--root", str(root), "--out", str(out)]) == 0
    # markdown doubles the backslash of the escape, so that it renders as written
    for name, shown in (("README.md", "abc\\\\u202egnp.exe"),
                        ("leaderboard.csv", "abc\\u202egnp.exe"),
                        ("index.html", "abc\\u202egnp.exe")):
        text = (out / name).read_text()
        assert shown in text, name
        assert not any(raw in text for raw in RAW), name
