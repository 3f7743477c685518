import io

import datasets
import pytest
from PIL import Image

import tasks
from harness.analyzers import analyze
from harness.scoring import grade
from tasks.spec import samples_hash
from vrbench.errors import VrbenchError


def test_registry_has_every_domain_with_three_or_more_tasks():
    for domain in tasks.DOMAINS:
        assert len(tasks.names(domain)) >= 3
    assert tasks.names() == [n for d in tasks.DOMAINS for n in tasks.names(d)]
    assert {tasks.load(n).domain for n in tasks.names("far")} == {"far"}


def test_resolve_suites_and_commas():
    ids = tasks.resolve("id")
    assert ids and all(t.domain == "id" for t in ids)
    mixed = tasks.resolve("ood,count_shapes")
    assert [t.name for t in mixed][-1] == "count_shapes"
    assert {t.domain for t in mixed} == {"id", "ood"}
    assert len(tasks.resolve("all")) == len(tasks.names())


def test_unknown_task_is_a_clear_error():
    with pytest.raises(VrbenchError, match="unknown task 'nope'"):
        tasks.load("nope")


@pytest.mark.parametrize("name", tasks.names())
def test_task_data_is_deterministic_and_well_formed(name):
    a, b = tasks.load(name), tasks.load(name)
    assert samples_hash(a.samples("test", 20)) == samples_hash(b.samples("test", 20))
    ds = a.dataset("test")
    assert isinstance(ds.features["images"], datasets.List)
    assert isinstance(ds.features["images"].feature, datasets.Image)
    for s in a.samples("test", 20):
        img = Image.open(io.BytesIO(s.images[0]["bytes"]))
        assert img.width % 28 == 0 and img.height % 28 == 0
        choices = s.choices or None
        # worked solutions end in \boxed{target} and grade as correct, with and without a check
        assert s.solution.endswith(f"\\boxed{{{s.target}}}")
        assert grade(s.solution, s.target, choices).correct
        assert grade(s.solution_reflective, s.target, choices).correct
        assert not analyze(s.solution)["has_reflection"]
        assert analyze(s.solution_reflective)["has_reflection"]
        if a.answer_type == "multiple_choice":
            assert "(A)" in a.prompt(s) and len(s.choices) >= 2


@pytest.mark.parametrize("name", tasks.names())
def test_no_sample_repeats_across_splits(name):
    t = tasks.load(name)
    keys = {}
    for split in t.splits:
        for s in t.samples(split):
            key = (s.images[0]["bytes"], s.question)
            assert key not in keys, f"{s.id} repeats {keys[key]}"
            keys[key] = s.id
    assert len(keys) == sum(t.splits.values())


def test_test_split_does_not_depend_on_train_size():
    small = tasks.load("count_shapes")
    small.splits = {**small.splits, "train": 10}
    same = tasks.load("count_shapes")
    assert samples_hash(small.samples("test")) == samples_hash(same.samples("test"))


def test_seed_and_difficulty_knobs_change_the_data():
    base = tasks.load("count_shapes")
    other_seed = tasks.load("count_shapes")
    other_seed.seed = 1
    assert samples_hash(base.samples("test", 10)) != samples_hash(other_seed.samples("test", 10))
    harder = tasks.load("count_shapes")
    harder.params = {**harder.params, "cols": 4, "rows": 4, "target_range": [5, 6],
                     "max_objects": 12}
    assert all(int(s.target) >= 5 for s in harder.samples("test", 20))


def test_task_from_yaml_path(tmp_path):
    spec = (tasks.DEFS / "digit_sum.yaml").read_text().replace("name: digit_sum",
                                                               "name: my_sum")
    path = tmp_path / "my_sum.yaml"
    path.write_text(spec)
    assert tasks.load(str(path)).name == "my_sum"
    with pytest.raises(VrbenchError, match="does not exist"):
        tasks.load(str(tmp_path / "missing.yaml"))


def test_counting_solutions_tally_every_colour_in_the_image():
    """The worked solutions count each colour's shapes (read back from the pixels here)
    before answering: the tally must match the figure."""
    from tasks.render import CELL, COLORS
    for name in ("count_shapes", "compare_count"):
        t = tasks.load(name)
        for s in t.samples("test", 20):
            img = Image.open(io.BytesIO(s.images[0]["bytes"])).convert("RGB")
            seen = {c: 0 for c in ("red", "green", "blue")}
            for r in range(img.height // CELL):
                for c in range(img.width // CELL):
                    px = img.getpixel((c * CELL + CELL // 2, r * CELL + CELL // 2))
                    for colour in seen:
                        seen[colour] += px == COLORS[colour]
            tally = f"There are {seen['red']} red, {seen['green']} green and {seen['blue']} blue"
            assert s.solution.startswith(tally), (name, s.id, s.solution)


def test_a_generated_split_is_built_once_a_process(monkeypatch):
    import dataclasses
    import functools

    import tasks as registry
    from tasks import spec
    first = registry.load("count_shapes")
    a = first.samples("test", 4)
    drawn = []
    real = spec.GENERATORS[first.generator]

    @functools.wraps(real)  # the same parameters, as the task file is checked against them
    def counted(rng, **kw):
        drawn.append(1)
        return real(rng, **kw)

    monkeypatch.setitem(spec.GENERATORS, first.generator, counted)
    again = registry.load("count_shapes")
    assert again.samples("test", 4) == a and drawn == []  # found, not drawn again
    assert again.dataset("test") is first.dataset("test")
    reseeded = dataclasses.replace(first, seed=98_765, data={})  # another definition
    assert reseeded._definition() != first._definition()
    assert reseeded.samples("test", 4) != a and len(drawn) >= 4


def test_a_split_is_drawn_only_as_far_as_asked_and_its_first_samples_do_not_depend_on_it():
    import dataclasses

    import tasks as registry
    base = registry.load("sides_sum")
    fresh = dataclasses.replace(base, seed=4_321, data={})  # a definition not drawn yet
    few = fresh.samples("test", 6)
    draw = fresh._draw()
    assert len(draw.columns["test"]["id"]) == 6 and "validation" not in draw.columns
    # a later split needs the earlier ones complete (no pair repeats across splits)
    assert len(fresh.samples("validation", 3)) == 3
    assert len(draw.columns["test"]["id"]) == fresh.splits["test"]
    assert len(draw.columns["validation"]["id"]) == 3
    assert fresh.samples("test")[:6] == few
    # the whole split drawn at once in another process begins with the same samples
    from tasks import spec
    spec._GENERATED.pop(fresh._definition())
    whole = dataclasses.replace(base, seed=4_321, data={})
    assert whole.dataset("test")[:6]["question"] == [s.question for s in few]
    assert whole.samples("test", 6) == few


def test_a_failed_draw_fails_the_same_way_when_asked_again(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("answer_type: integer\ndomain: id\ngenerator: count_shapes\nname: broken\n"
                    "params:\n  cols: 0\nprompt_template: '{question}'\nsplits:\n  test: 4\n"
                    "version: '1'\n")
    messages = []
    for _ in range(2):  # the second ask finds the same definition's draw
        with pytest.raises(VrbenchError) as e:
            tasks.from_yaml(path).samples("test", 2)
        messages.append(str(e.value))
    assert messages[0] == messages[1] and "failed with its parameters" in messages[0]
