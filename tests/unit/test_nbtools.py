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
