import pytest

from helpers import nbtools

from .conftest import make_notebook


def test_hash_ignores_markdown_and_injected_parameters():
    base = make_notebook(["a = 1", "b = 2"])
    other_markdown = make_notebook(["a = 1", "b = 2"], markdown=("# changed",))
    injected = make_notebook(["a = 1", "SMOKE = True", "b = 2"],
                             tags=[None, ["injected-parameters"], None])
    assert nbtools.code_hash(base) == nbtools.code_hash(other_markdown) == nbtools.code_hash(injected)


def test_hash_changes_with_code_and_accepts_line_lists():
    assert nbtools.code_hash(make_notebook(["a = 1"])) != nbtools.code_hash(make_notebook(["a = 2"]))
    as_lines = make_notebook([["a = 1\n", "b = 2"]])
    assert nbtools.code_hash(as_lines) == nbtools.code_hash(make_notebook(["a = 1\nb = 2"]))


def test_read_notebook_names_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        nbtools.read_notebook(tmp_path / "absent.ipynb")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.ipynb is not valid notebook JSON"):
        nbtools.read_notebook(broken)


def test_setup_cell_and_colab_url():
    cell = nbtools.setup_cell("2", "org/repo")
    assert 'KERAS = "2"' in cell and "https://github.com/org/repo.git" in cell
    assert nbtools.colab_url("org/repo", "main", "00_x.ipynb").endswith(
        "github/org/repo/blob/main/notebooks/00_x.ipynb")


def test_hash_normalises_line_endings_and_surrounding_blank_lines_only():
    base = nbtools.code_hash(make_notebook(["a = 1\nb = 2"]))
    assert nbtools.code_hash(make_notebook(["a = 1\r\nb = 2\n\n"])) == base
    assert nbtools.code_hash(make_notebook(["a = 1\nb = 3"])) != base
    assert nbtools.code_hash(make_notebook(["a = 1", "b = 2"])) != base      # cell boundaries count
    assert len(base) == 16 and int(base, 16) >= 0


def test_hash_of_a_file_equals_the_hash_of_its_content(tmp_path):
    import json

    notebook = make_notebook(["a = 1", "print(a)"])
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(notebook))
    assert nbtools.code_hash(path) == nbtools.code_hash(notebook)


def test_code_cells_skip_markdown_and_the_injected_parameters():
    notebook = make_notebook(["a = 1", "SMOKE = True", "b = 2"], markdown=("# t", "text"),
                             tags=[["parameters"], ["injected-parameters"], None])
    assert [nbtools.cell_source(c) for c in nbtools.code_cells(notebook)] == ["a = 1", "b = 2"]
    assert nbtools.cell_source({"source": ["x = 1\n", "y = 2"]}) == "x = 1\ny = 2"
    assert nbtools.cell_source({}) == ""


def test_stamp_is_the_runners_metadata_entry():
    notebook = make_notebook(["a = 1"])
    assert nbtools.stamp(notebook) is None
    notebook["metadata"][nbtools.STAMP_KEY] = {"code_hash": "x", "mode": "full"}
    assert nbtools.stamp(notebook) == {"code_hash": "x", "mode": "full"}


def test_course_config_reads_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.course]\ngithub_repo = "org/repo"\nbranch = "dev"\n')
    assert nbtools.course_config(tmp_path) == {"github_repo": "org/repo", "branch": "dev"}


def test_setup_cell_differs_only_in_keras_repository_and_branch():
    three, two = nbtools.setup_cell("3", "org/repo"), nbtools.setup_cell("2", "org/repo")
    assert 'KERAS = "3"' in three and 'KERAS = "2"' not in three
    assert three.replace('KERAS = "3"', 'KERAS = "2"') == two
    assert nbtools.setup_cell("3", "org/repo", "dev") == three.replace('"main"', '"dev"') != three
    assert "org/repo" in three and "other/repo" in nbtools.setup_cell("3", "other/repo")
    compile(three, "setup", "exec")                                         # valid Python
