from helpers import course, env


def test_chapter_numbers_are_the_fixed_plan():
    assert [c.number for c in course.CHAPTERS] == list(range(16))
    assert all(c.topic and c.part for c in course.CHAPTERS)
    assert course.CHAPTERS[0].part == "Foundations" and course.CHAPTERS[15].part == "Capstone"


def test_every_notebook_belongs_to_a_chapter():
    numbers = {c.number for c in course.CHAPTERS}
    for notebook in (env.course_root() / "notebooks").glob("*.ipynb"):
        assert int(notebook.name[:2]) in numbers, notebook.name
    assert course.CHAPTERS[0].notebook().name == "00_start_here.ipynb"


def test_a_chapter_finds_its_notebook_only_when_it_exists(fake_root):
    # fake_root holds notebooks/99_try_things.ipynb and is the course root (COURSE_ROOT).
    (fake_root / "notebooks" / "03_save_things.ipynb").write_text("{}")
    (fake_root / "notebooks" / "13_other.ipynb").write_text("{}")   # not chapter 3's
    (fake_root / "notebooks" / "04_draft.txt").write_text("")        # not a notebook
    chapters = {c.number: c for c in course.CHAPTERS}
    assert chapters[3].notebook() == fake_root / "notebooks" / "03_save_things.ipynb"
    assert chapters[4].notebook() is None and chapters[13].notebook().name == "13_other.ipynb"
    assert chapters[1].notebook() is None
    other = fake_root / "elsewhere"
    (other / "notebooks").mkdir(parents=True)
    (other / "notebooks" / "04_quantize.ipynb").write_text("{}")
    assert chapters[4].notebook(other) == other / "notebooks" / "04_quantize.ipynb"
    assert chapters[3].notebook(other) is None


def test_a_chapter_split_in_parts_lists_every_part_in_order(fake_root):
    for name in ("11b_load_test.ipynb", "11_serve.ipynb", "11c_secure.ipynb", "110_other.ipynb",
                 "12_x.ipynb"):
        (fake_root / "notebooks" / name).write_text("{}")
    chapters = {c.number: c for c in course.CHAPTERS}
    assert [p.name for p in chapters[11].notebooks()] == ["11_serve.ipynb", "11b_load_test.ipynb",
                                                          "11c_secure.ipynb"]
    assert chapters[11].notebook().name == "11_serve.ipynb"          # the chapter's first notebook
    assert chapters[3].notebooks() == [] and chapters[3].notebook() is None
