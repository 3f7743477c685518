"""Class 5 of the hardening: no path in a dataset or a task name leads a read or a write
outside its folder."""

import datasets

from helpers import one_sentence
from vrbench.cli import main


def _mathvista_copy(base, image: str):
    rows = {"pid": ["1"], "question": ["How many?"], "image": [image], "answer": ["1"],
            "choices": [None], "precision": [None], "question_type": ["free_form"],
            "answer_type": ["integer"], "query": ["How many?"]}
    folder = base / "AI4Math" / "MathVista"
    folder.mkdir(parents=True)
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "testmini.parquet"))


def test_a_row_pointing_outside_its_dataset_is_refused(tmp_path, tiny_model, capsys):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for the model")
    for image in ("../../../secret.png", str(secret)):
        base = tmp_path / f"data{len(image)}"
        _mathvista_copy(base, image)
        code = main(["eval", "--model", tiny_model, "--tasks", "mathvista_testmini",
                     "--data-dir", str(base), "--output", str(tmp_path / f"r{len(image)}")])
        assert code == 2
        assert "leads outside it" in one_sentence(capsys)
        assert not (tmp_path / f"r{len(image)}" / "samples.jsonl").exists()


def test_export_never_writes_outside_its_folder(tmp_path, capsys):
    evil = tmp_path / "evil.yaml"
    evil.write_text((tmp_path.parent / "x").name and
                    "name: ../../x\nversion: '1'\ndomain: id\nanswer_type: integer\n"
                    "prompt_template: '{question}'\nsplits: {test: 2}\ngenerator: count_shapes\n")
    out = tmp_path / "deep" / "out"
    assert main(["export-lmeval", str(out), "--tasks", str(evil)]) == 2
    assert "task name '../../x' must be" in one_sentence(capsys)
    assert main(["export-lmeval", str(out), "--tasks", "count_shapes", "--split",
                 "../../../escaped"]) == 2
    one_sentence(capsys)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["evil.yaml",
                                                                         "vrbench_lmeval.py"]


def test_a_missing_local_path_that_looks_like_a_hub_id_is_one_sentence(tmp_path, capsys,
                                                                        monkeypatch):
    """"models/nope" with a models/ folder here is a local path that does not exist: it is
    never tried on the Hub (minutes of retries); a Hub id the cache lacks, offline, is one
    sentence too."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    args = ["--tasks", "count_shapes", "--limit", "1", "--output", str(tmp_path / "run")]
    assert main(["eval", "--model", "models/nope", *args]) == 2
    assert "model path models/nope does not exist" in one_sentence(capsys)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert main(["eval", "--model", "somebody/nope", *args]) == 2
    assert "not in the Hub cache, and HF_HUB_OFFLINE is set" in one_sentence(capsys)
    assert not (tmp_path / "run").exists()
