"""The `tabular_sequences` source: CSV/Parquet rows grouped into variable-length sequences,
through ExampleGen (Beam) and `make_dataset`, and its errors naming file, row and column."""

import numpy as np
import pandas as pd
import pytest

from keras_ar import contract
from pipelines import config as config_lib
from pipelines.components import example_gen
from pipelines.components.base import Artifact, ExecutionContext
from pipelines.data import make_dataset, records, sources

GROUPS = 12


def _frame(seed=0):
    """GROUPS sequences of lengths 2..5, dim 2; x0 = 10 * group + step identifies each frame;
    rows of different groups interleaved; a text column that must not become a feature."""
    rng = np.random.default_rng(seed)
    rows = [{"seq": f"s{g:02d}", "t": t, "x0": 10.0 * g + t, "x1": -0.5 * t, "kind": g % 3,
             "note": "n"}
            for g in range(GROUPS) for t in range(2 + g % 4)]
    return pd.DataFrame([rows[i] for i in rng.permutation(len(rows))])


def _expected(frame):
    """{first x0 (=10 * group): (frames [T, 2] in time order, label)}."""
    out = {}
    for _, rows in frame.groupby("seq"):
        rows = rows.sort_values("t")
        out[rows["x0"].iloc[0]] = (rows[["x0", "x1"]].to_numpy(np.float32),
                                   int(rows["kind"].iloc[0]))
    return out


def _ingest(tmp_path, options):
    data = {"source": "tabular_sequences", "modality": "sequences", "options": options,
            "num_shards": 1, "eval_percent": 25, "test_percent": 25, "batch_size": 64,
            "use_label": True}
    examples = Artifact("Examples", str(tmp_path / "examples"))
    context = ExecutionContext(str(tmp_path), "key", "run", log=lambda *a: None)
    example_gen.execute({}, {"examples": examples}, {"data": data}, context)
    return config_lib.DataConfig(**{**data, "examples_dir": examples.uri})


def _check_splits(config, expected):
    seen = {}
    for split in records.SPLITS:
        batch = next(iter(make_dataset(config, split, repeat=False)))
        x, lengths = batch[contract.X].numpy(), batch[contract.LENGTHS].numpy()
        labels = batch[contract.GLOBAL_CONDITION].numpy()
        assert x.dtype == np.float32 and x.shape[1:] == (lengths.max(), 2)
        for row, n, label in zip(x, lengths, labels):
            frames, want_label = expected[row[0, 0]]
            np.testing.assert_array_equal(row[:n], frames)
            assert np.all(row[n:] == 0.0) and label == want_label
            seen[row[0, 0]] = split
    assert sorted(seen) == sorted(expected)  # every group exactly once, across the splits
    for first, split in seen.items():  # stable hash split of the key
        assert split == records.split_of(f"tabular_sequences/s{int(first) // 10:02d}", 25, 25)


def test_csv_with_order_column_through_example_gen(tmp_path):
    frame = _frame()
    frame.to_csv(tmp_path / "seqs.csv", index=False)
    config = _ingest(tmp_path, {"path": str(tmp_path / "seqs.csv"), "group_column": "seq",
                                "order_column": "t", "label_column": "kind"})
    _check_splits(config, _expected(frame))


def test_parquet_glob_in_file_order_through_example_gen(tmp_path):
    frame = _frame()
    order = np.random.default_rng(1).permutation(sorted(set(frame["seq"])))
    frame = pd.concat([frame[frame["seq"] == g].sort_values("t") for g in order])
    half = len(frame) // 2  # a group may straddle the two files
    frame.iloc[:half].to_parquet(tmp_path / "part-0.parquet", index=False)
    frame.iloc[half:].to_parquet(tmp_path / "part-1.parquet", index=False)
    config = _ingest(tmp_path, {"path": str(tmp_path / "part-*.parquet"),
                                "group_column": "seq", "label_column": "kind",
                                "feature_columns": ["x0", "x1"]})
    _check_splits(config, _expected(frame))


def test_items_are_stable_and_default_features_are_numeric(tmp_path):
    frame = _frame()
    frame.to_csv(tmp_path / "seqs.csv", index=False)
    source = sources.get("tabular_sequences", path=str(tmp_path / "seqs.csv"),
                         group_column="seq", order_column="t", label_column="kind")
    items = source.items()
    firsts = list(dict.fromkeys(frame["seq"]))  # order of each group's first row
    assert [key for key, *_ in items] == [f"tabular_sequences/{g}" for g in firsts]
    assert all(dim == 2 for _, _, dim, _ in items)  # x0, x1 ("note" is text, "t" the order)
    again = sources.get("tabular_sequences", path=str(tmp_path / "seqs.csv"),
                        group_column="seq", order_column="t", label_column="kind").items()
    assert again == items
    assert source.metadata() == {"dim": 2, "num_classes": 3, "sequences": GROUPS,
                                 "max_length": 5}


def _items(path, **options):
    return sources.get("tabular_sequences", path=str(path), **options).items()


def test_errors_name_the_file_row_and_column(tmp_path):
    csv = tmp_path / "a.csv"
    with pytest.raises(FileNotFoundError, match="a.csv.*does not exist"):
        _items(csv, group_column="g")
    with pytest.raises(FileNotFoundError, match=r"no file matches .*\*\.parquet"):
        _items(tmp_path / "*.parquet", group_column="g")
    csv.write_text("g,x,y\n1,0.5,1\n1,oops,2\n")
    with pytest.raises(ValueError, match=r"a.csv row 3, column 'x': value is not a number "
                                         r"\('oops'\)"):
        _items(csv, group_column="g", feature_columns=["x", "y"])
    with pytest.raises(ValueError, match=r"a.csv lacks column\(s\) \['z'\]; it has "
                                         r"\['g', 'x', 'y'\]"):
        _items(csv, group_column="g", feature_columns=["x", "z"])
    csv.write_text("g,x,y\n1,0.5,1\n1,,2\n")
    with pytest.raises(ValueError, match=r"row 3, column 'x': value is NaN/inf or missing"):
        _items(csv, group_column="g")
    csv.write_text("g,x,y\n1,0.5,1\n1,inf,2\n")
    with pytest.raises(ValueError, match=r"row 3, column 'x': value is NaN/inf"):
        _items(csv, group_column="g")
    csv.write_text("g,x,c\n1,0.5,1\n2,0.5,0\n1,0.7,2\n")
    with pytest.raises(ValueError, match=r"a.csv row 4, column 'c': value 2.0 differs from "
                                         r"the label 1.0 of group 1"):
        _items(csv, group_column="g", label_column="c")
    csv.write_text("g,x,c\n1,0.5,1.5\n")
    with pytest.raises(ValueError, match=r"row 2, column 'c': value 1.5 of group 1 is not an "
                                         r"integer class >= 0"):
        _items(csv, group_column="g", label_column="c")
    csv.write_text("g,t,x\n1,0,0.5\n1,0,0.7\n")
    with pytest.raises(ValueError, match=r"column 't': value repeats within group 1"):
        _items(csv, group_column="g", order_column="t")


def test_empty_files_and_bad_options(tmp_path):
    csv = tmp_path / "empty.csv"
    csv.write_text("g,x\n")
    with pytest.raises(ValueError, match=r"empty.csv has no data rows \(columns: \['g', 'x'\]"):
        _items(csv, group_column="g")
    csv.write_text("")
    with pytest.raises(ValueError, match="empty.csv has no data rows"):
        _items(csv, group_column="g")
    pd.DataFrame({"g": pd.Series([], dtype="int64")}).to_parquet(tmp_path / "e.parquet")
    with pytest.raises(ValueError, match="e.parquet has no data rows"):
        _items(tmp_path / "e.parquet", group_column="g")
    (tmp_path / "data.txt").write_text("g,x\n1,2\n")
    with pytest.raises(ValueError, match=r"cannot tell the format .*set option `format"):
        _items(tmp_path / "data.txt", group_column="g")
    assert _items(tmp_path / "data.txt", group_column="g", format="csv") == [
        ("tabular_sequences/1", [2.0], 1, 0)]
    with pytest.raises(ValueError, match="`path` .* is required"):
        sources.get("tabular_sequences", group_column="g").check()
    with pytest.raises(ValueError, match="`group_column`"):
        sources.get("tabular_sequences", path=str(tmp_path / "data.txt"),
                    format="csv").check()


def test_japanese_vowels_csv_example_round_trips(tmp_path):
    """The example file of `csv_sequences_mdn.yaml` reads back as the bundled sequences."""
    from pipelines.data import japanese_vowels
    from pipelines.data.sources.tabular_sequences import write_japanese_vowels_csv

    path = tmp_path / "data" / "jv.csv"
    assert write_japanese_vowels_csv(str(path)) == 9961
    items = _items(path, group_column="utterance", order_column="frame",
                   feature_columns=[f"c{d}" for d in range(12)], label_column="speaker")
    train = japanese_vowels.load("train")
    assert len(items) == 640 and {dim for _, _, dim, _ in items} == {12}
    assert sorted(len(v) // 12 for _, v, _, _ in items)[::639] == [7, 29]
    for i in (0, 269):
        key, values, _, label = items[i]
        n = train["lengths"][i]
        assert key == f"tabular_sequences/{i}" and label == train["global_condition"][i]
        np.testing.assert_array_equal(np.reshape(values, (-1, 12)), train["x"][i, :n])


def test_sample_sequences_are_written_as_csv_up_to_their_length(tmp_path):
    from pipelines.components import sample_gen

    x = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3) / 4
    files = sample_gen._write(x, "onnx", tmp_path, {"modality": "sequences"}, {},
                              lengths=np.array([4, 2]))
    assert files == ["onnx_0.csv", "onnx_1.csv"]
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "onnx_0.csv", delimiter=","), x[0])
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "onnx_1.csv", delimiter=","),
                                  x[1, :2])
