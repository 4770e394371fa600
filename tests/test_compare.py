"""read_result's one-line errors and compare's figure, CSV and Welch table (no training)."""

import csv
import json
import math
from pathlib import Path

import pytest
from scipy import stats

from mbrl_jax.compare import _panels, _welch, compare
from mbrl_jax.results import read_result


def _result(
    experiment="dyna-maze", curves=None, seeds=range(5), x_label="Episodes", **extra
) -> dict:
    curves = curves or {
        "n=0": {"x": [1.0, 2.0, 3.0], "y": [30.0, 20.0, None], "y_err": [3.0, 2.0, None]},
        "n=5": {"x": [1.0, 2.0, 3.0], "y": [12.0, 8.0, 6.0], "y_err": [1.0, 0.8, 0.5]},
    }
    return {
        "experiment": experiment,
        "config": {"alpha": 0.1, "planner": {"horizon": 10}},
        "seeds": list(seeds),
        "x_label": x_label,
        "y_label": "Steps per episode",
        "curves": curves,
        **extra,
    }


def _write(folder: Path, result) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "result.json"
    path.write_text(result if isinstance(result, str) else json.dumps(result))
    return path


def _rows(table: str) -> dict[tuple[str, str], list[str]]:
    """The table's rows by (result, label), the cells after those two split on spaces."""
    rows = {}
    for line in table.splitlines()[1:]:
        cells = line.split()
        if len(cells) > 4 and cells[4] == "±":
            rows[cells[0], cells[1]] = cells[2:]
    return rows


# ---- read_result --------------------------------------------------------------------------

CURVE = {"x": [1, 2], "y": [1.0, None], "y_err": [0.1, None]}
BAD_RESULTS = {
    "not an object": ("[1, 2]", "expected a JSON object (a result), got an array"),
    "no experiment": ({"curves": {"a": CURVE}}, 'not a result: no "experiment" key'),
    "no curves": ({"experiment": "e"}, 'not a result: no "curves" key'),
    "experiment a number": ({"experiment": 3, "curves": {"a": CURVE}}, '"experiment" must be'),
    "x_label a list": (
        {"experiment": "e", "x_label": [], "curves": {"a": CURVE}},
        '"x_label" must be a string, got an array',
    ),
    "curves a list": ({"experiment": "e", "curves": [CURVE]}, '"curves" must be a non-empty'),
    "curves empty": ({"experiment": "e", "curves": {}}, '"curves" must be a non-empty'),
    "curve a number": ({"experiment": "e", "curves": {"a": 1}}, "curve 'a': expected an object"),
    "no y_err": (
        {"experiment": "e", "curves": {"a": {"x": [1], "y": [1]}}},
        """curve 'a': no "y_err" list""",
    ),
    "y a string": (
        {"experiment": "e", "curves": {"a": {"x": [1], "y": "1", "y_err": [0]}}},
        """curve 'a': "y" must be a list, got a string""",
    ),
    "x null": (
        {"experiment": "e", "curves": {"a": {"x": [None], "y": [1], "y_err": [0]}}},
        """curve 'a': "x"[0] must be a number, got null""",
    ),
    "y a boolean": (
        {"experiment": "e", "curves": {"a": {"x": [1, 2], "y": [1, True], "y_err": [0, 0]}}},
        """curve 'a': "y"[1] must be a number, got a boolean""",
    ),
    "unequal lengths": (
        {"experiment": "e", "curves": {"a": {"x": [1, 2], "y": [1], "y_err": [0, 0]}}},
        """curve 'a': "x", "y" and "y_err" must have one length, got "x" 2, "y" 1, "y_err" 2""",
    ),
    "seeds not integers": (
        {"experiment": "e", "seeds": [0, 1.5], "curves": {"a": CURVE}},
        '"seeds" must be a list of integers',
    ),
    "plot_style a list": (
        {"experiment": "e", "plot_style": [], "curves": {"a": CURVE}},
        '"plot_style" must be an object',
    ),
    "panel naming an unknown curve": (
        {"experiment": "e", "plot_style": {"panels": [{"labels": ["b"]}]}, "curves": {"a": CURVE}},
        """"plot_style" panel '' names no curve: 'b'""",
    ),
}


@pytest.mark.parametrize("case", list(BAD_RESULTS))
def test_read_result_names_the_path_and_what_is_wrong(tmp_path, case):
    content, message = BAD_RESULTS[case]
    path = _write(tmp_path / "r", content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ValueError) as error:
        read_result(path)
    assert str(error.value).startswith(f"{path}: {message}")
    assert "\n" not in str(error.value)


def test_read_result_file_errors(tmp_path, monkeypatch):
    def fails(path: Path, match: str) -> None:
        with pytest.raises(ValueError) as error:
            read_result(path)
        assert str(error.value) == f"{path}: {match}"

    fails(tmp_path / "missing.json", "no such file")
    fails(tmp_path, "is a folder, not a result.json file")
    (tmp_path / "file").write_text("x")
    fails(tmp_path / "file" / "result.json", "no such file")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    fails(tmp_path / "binary.json", "not a text file (not UTF-8), not a result.json")
    broken = _write(tmp_path / "broken", '{"experiment": "e",\n  "curves": }')
    fails(broken, "invalid JSON at line 2, column 13: Expecting value")

    locked = _write(tmp_path / "locked", json.dumps(_result()))
    read_text = Path.read_text

    def denied(self, *args, **kwargs):  # root reads a chmod-000 file, so refuse it here
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", denied)
    fails(locked, "cannot read the file (Permission denied)")


def test_read_result_returns_a_valid_result(tmp_path):
    result = _result(plot_style={"panels": [{"title": "all", "labels": ["n=0", "n=5"]}]})
    assert read_result(str(_write(tmp_path, result))) == result


# ---- compare ------------------------------------------------------------------------------


def test_compare_writes_png_csv_and_a_welch_table(tmp_path):
    a = _write(tmp_path / "base", _result())
    b_result = _result(seeds=range(3, 11))  # 8 runs, 2 seeds shared with a's 5
    b_result["config"]["alpha"] = 0.2
    b_result["curves"]["n=0"] = {"x": [1, 2, 3], "y": [25, 16.5, None], "y_err": [2, 1.2, None]}
    b_result["curves"]["n=5"] = {"x": [1, 2, 3], "y": [11, 7, 6.0], "y_err": [1, 0.6, 0.5]}
    b = _write(tmp_path / "new", b_result)
    out = tmp_path / "cmp" / "deeper"
    table = compare([a, b], out)

    png = (out / "compare.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 1000
    assert (out / "compare.txt").read_text(encoding="utf-8") == table + "\n"
    rows = list(csv.DictReader((out / "compare.csv").open()))
    assert list(rows[0]) == ["result", "label", "x", "y", "y_err"] and len(rows) == 12
    assert rows[2] == {"result": "base", "label": "n=0", "x": "3.0", "y": "", "y_err": ""}

    cells = _rows(table)
    assert cells["base", "n=0"] == ["2", "20", "±", "2", "5"]  # the last x with a finite mean
    x, mean, _, err, runs, diff, t, df, p = cells["new", "n=0"]
    assert (x, mean, err, runs) == ("2", "16.5", "1.2", "8")
    # hand computation: d = 16.5 - 20, se² = 2² + 1.2², df from Welch-Satterthwaite
    var = 2.0**2 + 1.2**2
    hand_df = var**2 / (2.0**4 / 4 + 1.2**4 / 7)
    hand_t = -3.5 / math.sqrt(var)
    scipy_t, scipy_p = stats.ttest_ind_from_stats(
        16.5, 1.2 * math.sqrt(8), 8, 20.0, 2.0 * math.sqrt(5), 5, equal_var=False
    )
    assert hand_t == pytest.approx(scipy_t)
    assert float(diff) == -3.5
    assert float(t) == pytest.approx(hand_t, abs=1e-3)
    assert float(df) == pytest.approx(hand_df, abs=0.05)
    assert float(p) == pytest.approx(scipy_p, rel=1e-2)
    assert cells["new", "n=5"][:5] == ["3", "6", "±", "0.5", "8"]
    assert cells["new", "n=5"][5:7] == ["+0", "+0.000"]
    assert "new vs base: alpha 0.1 -> 0.2; 2 seeds in common" in table.splitlines()


def test_welch_matches_scipy():
    from mbrl_jax.compare import _Final

    a, b = _Final(2.0, 10.0, 0.7, 6), _Final(2.0, 12.5, 1.9, 4)
    w = _welch(a, b)
    t, p = stats.ttest_ind_from_stats(
        12.5, 1.9 * math.sqrt(4), 4, 10.0, 0.7 * math.sqrt(6), 6, equal_var=False
    )
    assert w.diff == 2.5 and w.t == pytest.approx(t) and w.p == pytest.approx(p)
    assert w.df == pytest.approx((0.7**2 + 1.9**2) ** 2 / (0.7**4 / 5 + 1.9**4 / 3))
    assert _welch(a, _Final(2.0, 11.0, 0.0, 1)).t is None  # one run: no test
    assert _welch(_Final(2.0, 1.0, 0.0, 5), _Final(2.0, 1.0, 0.0, 5)).p is None  # no spread


def test_the_same_result_twice_differs_by_zero_with_p_one(tmp_path):
    path = _write(tmp_path / "dm", _result())
    table = compare([path, path], tmp_path / "out")
    cells = _rows(table)
    assert set(cells) == {(n, lb) for n in ("dm", "dm#2") for lb in ("n=0", "n=5")}
    for label in ("n=0", "n=5"):
        assert cells["dm#2", label][5:] == ["+0", "+0.000", "8.0", "1"]  # df = 2 (5 - 1)
    assert "dm#2 vs dm: same settings; 5 seeds in common" in table


def test_names_default_to_folders_made_unique_or_are_given(tmp_path):
    a = _write(tmp_path / "x" / "dm", _result())
    b = _write(tmp_path / "y" / "dm", _result())
    assert {n for n, _ in _rows(compare([a, b], tmp_path / "o1"))} == {"x/dm", "y/dm"}
    given = _rows(compare([a, b], tmp_path / "o2", names=["old", "new"]))
    assert {n for n, _ in given} == {"old", "new"}
    with pytest.raises(ValueError, match="names must be distinct non-empty strings"):
        compare([a, b], tmp_path / "o3", names=["same", "same"])
    with pytest.raises(ValueError, match="names: got 1 for 2 results"):
        compare([a, b], tmp_path / "o3", names=["one"])


def test_curves_go_to_the_first_results_panels():
    style = {"panels": [{"title": "A", "labels": ["n=0"]}, {"title": "B", "labels": ["n=5"]}]}
    one, two = _result(plot_style=style), _result()
    two["curves"]["extra"] = two["curves"]["n=5"]
    panels = _panels([one, two], ["one", "two"])
    assert [p["title"] for p in panels] == ["A", "B"]
    assert panels[0]["labels"] == ["one: n=0", "two: n=0", "two: extra"]
    assert panels[0]["colors"] == [0, 0, 1] and panels[0]["linestyles"] == ["-", "--", "--"]
    assert panels[1]["labels"] == ["one: n=5", "two: n=5"]


def test_final_x_differences_are_marked(tmp_path):
    a = _write(tmp_path / "a", _result())
    longer = _result()
    longer["curves"]["n=0"] = {"x": [1, 2, 3], "y": [30, 20, 18.0], "y_err": [3, 2, 1.0]}
    table = compare([a, _write(tmp_path / "b", longer)], tmp_path / "out")
    assert _rows(table)["b", "n=0"][5] == "-2*"


def test_compare_errors(tmp_path):
    a = _write(tmp_path / "a", _result())
    with pytest.raises(ValueError, match="compare needs at least 2 results, got 1"):
        compare([a], tmp_path / "out")
    other = _write(tmp_path / "b", _result("shortcut-maze", x_label="Time steps"))
    with pytest.raises(ValueError) as error:
        compare([a, other], tmp_path / "out")
    assert str(error.value) == (
        f"cannot compare {a} ('dyna-maze', 'Steps per episode' against 'Episodes') with "
        f"{other} ('shortcut-maze', 'Steps per episode' against 'Time steps'): "
        "different experiments with different axes"
    )
    same_axes = _write(tmp_path / "c", _result("blocking-maze"))
    assert "blocking-maze" in compare([a, same_axes], tmp_path / "out")  # allowed, and said
    disjoint = _write(tmp_path / "d", _result(curves={"q": CURVE}))
    with pytest.raises(ValueError, match=r"d/result.json has no curve label in common with"):
        compare([a, disjoint], tmp_path / "out")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="file: is a file, not an output folder"):
        compare([a, a], tmp_path / "file")
    with pytest.raises(ValueError, match="missing.json: no such file"):
        compare([a, tmp_path / "missing.json"], tmp_path / "new-out")
    assert not (tmp_path / "new-out").exists()  # nothing written before the inputs are checked
