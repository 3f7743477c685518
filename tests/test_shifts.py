"""Shift dials: each moves one factor of its source task, further with distance, and nothing
else; names resolve like tasks; `vrbench eval` draws accuracy against distance."""

import json

import numpy as np
import pytest

import tasks
from tasks import decode_images, render, shifts
from vrbench.cli import main
from vrbench.errors import VrbenchError


def _images(name: str, n: int = 6) -> list[np.ndarray]:
    return [np.asarray(decode_images(s)[0]) for s in tasks.load(name).samples("test", n)]


def test_names_parse_into_a_source_and_dials():
    assert shifts.parse("count_shapes.grid2") == ("count_shapes", [("grid", 2)])
    assert shifts.parse("sides_sum.background1.palette3") == (
        "sides_sum", [("background", 1), ("palette", 3)])
    assert shifts.parse("count_shapes") is None and shifts.parse("bar_chart.grid1") is None
    for bad, says in (("count_shapes.grid4", "1, 2 or 3"), ("count_shapes.grid0", "1, 2 or 3"),
                      ("count_shapes.size1", "not a dial"), ("count_shapes.grid", "not a dial"),
                      ("count_shapes.grid1.grid2", "twice")):
        with pytest.raises(VrbenchError, match=says):
            tasks.load(bad)
    with pytest.raises(VrbenchError, match="shifts of count_shapes"):
        tasks.load("count_shape.grid1")  # a typo in the source: the error lists the dials


def test_a_shift_is_an_ood_task_with_its_own_data_and_the_source_skill():
    src, t = tasks.load("compare_count"), tasks.load("compare_count.background2")
    assert (t.domain, t.generator, t.answer_type) == ("ood", src.generator, src.answer_type)
    assert set(t.splits) == {"validation", "test"} and t.version.startswith(src.version)
    assert t.prompt_template == src.prompt_template
    assert {k: v for k, v in t.params.items() if k != "background"} == {
        k: v for k, v in src.params.items() if k != "background"}
    seen = {(s.question, s.images[0]["bytes"]) for s in src.samples("train", 300)}
    assert not seen & {(s.question, s.images[0]["bytes"]) for s in t.samples("test")}


@pytest.mark.parametrize("source", shifts.SOURCES)
def test_background_and_palette_move_the_colours_by_distance(source):
    for k, name in enumerate(("white", "cream", "gray", "slate")):
        task = source if k == 0 else f"{source}.background{k}"
        assert all(tuple(im[1, 1]) == render.BACKGROUNDS[name] for im in _images(task))
    # paler shapes: the darkest pixel of the figure gets lighter with each step
    darkest = [min(im.sum(axis=2).min() for im in _images(
        source if k == 0 else f"{source}.palette{k}", 12)) for k in range(4)]
    assert darkest == sorted(darkest) and len(set(darkest)) == 4


@pytest.mark.parametrize("source", shifts.SOURCES)
def test_grid_count_and_shape_dials(source):
    sizes = [_images(source if k == 0 else f"{source}.grid{k}", 2)[0].shape[:2]
             for k in range(4)]
    assert sizes == [(56 * n, 56 * n) for n in (3, 4, 5, 6)]
    top = [max(int(s.target) for s in tasks.load(
        source if k == 0 else f"{source}.count{k}").samples("test")) for k in range(4)]
    assert top == sorted(top) and len(set(top)) == 4  # answers beyond the training range
    trained = {s.target for s in tasks.load(source).samples("train", 500)}
    far = {s.target for s in tasks.load(f"{source}.count3").samples("test")}
    assert not far <= trained
    for k in (1, 2, 3):  # shapes the source never draws
        p = tasks.load(f"{source}.shape{k}").params
        drawn = set(p["shapes"]) if "shapes" in p else {s for s, _ in p["sides"]}
        src = tasks.load(source).params  # sides_sum draws its generator's triangles and squares
        assert drawn - set(src.get("shapes", ("triangle", "square")))


def test_sides_keep_their_count_when_drawn_another_way():
    for s in tasks.load("sides_sum.shape3").samples("test", 20):
        meta = s.meta
        assert int(s.target) == 3 * meta.get("triangles", 0) + 4 * meta.get("diamonds", 0)


@pytest.mark.parametrize("source", shifts.SOURCES)
def test_phrasing_and_format_change_only_the_words(source):
    src = tasks.load(source)
    trained = {s.question for s in src.samples("train", 200)}
    for k in (1, 2, 3):
        words = tasks.load(f"{source}.phrasing{k}")
        assert {k: v for k, v in words.params.items() if k != "phrasings"} == {
            k: v for k, v in src.params.items() if k != "phrasings"}
        (phrasing,) = words.params["phrasings"]
        head = phrasing.split("{")[0]  # the words before the first blank
        questions = [s.question for s in words.samples("test", 20)]
        assert all(q.startswith(head) for q in questions) and not set(questions) & trained
        fmt = tasks.load(f"{source}.format{k}")
        assert fmt.prompt_template != src.prompt_template
        assert fmt.prompt_template.startswith("{question}\n")
        assert fmt.params == src.params


def test_suites():
    assert len(tasks.resolve("shifts")) == len(shifts.SOURCES) * len(shifts.DIALS) * 3
    assert [t.name for t in tasks.resolve("ood")] == list(shifts.MACRO)
    far = tasks.resolve("far")
    assert far and {t.domain for t in far} == {"far"}
    assert not {t.name for t in far} & set(shifts.MACRO)


def test_eval_draws_accuracy_against_distance(tiny_model, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["eval", "--model", tiny_model, "--tasks",
                 "count_shapes,count_shapes.grid1,count_shapes.grid2,count_shapes.count1",
                 "--limit", "4", "--max-new-tokens", "8", "--output", str(run),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "accuracy against shift distance" in out
    line = next(ln for ln in out.splitlines() if ln.split()[:2] == ["count_shapes", "grid"])
    results = json.loads((run / "results.json").read_text())["results"]
    assert line.split()[2:] == [f"{100 * results[t]['acc']:.1f}" for t in (
        "count_shapes", "count_shapes.grid1", "count_shapes.grid2")]
    assert (run / "shifts.png").stat().st_size > 1000
