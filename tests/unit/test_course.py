from helpers import course, env


def test_chapter_numbers_are_the_fixed_plan():
    assert [c.number for c in course.CHAPTERS] == list(range(16))


def test_every_notebook_belongs_to_a_chapter():
    numbers = {c.number for c in course.CHAPTERS}
    for notebook in (env.course_root() / "notebooks").glob("*.ipynb"):
        assert int(notebook.name[:2]) in numbers, notebook.name
    assert course.CHAPTERS[0].notebook().name == "00_start_here.ipynb"
