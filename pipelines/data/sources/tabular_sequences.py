"""Variable-length continuous sequences from CSV or Parquet: one sequence per group id.

Options:
    path             a file, or a glob of files (read in sorted order, rows concatenated)
    format           csv | parquet (default: from the extension: .csv/.csv.gz, .parquet/.pq)
    group_column     the sequence id; a group may span files
    order_column     optional: frames sorted by it within a group (otherwise file order)
    feature_columns  optional list (default: every numeric column other than the group,
                     order and label columns), in the given order -> `dim`
    label_column     optional: an integer class >= 0 per group (constant within it), stored
                     as `label` (0 without it)

Everything is read and checked in `items()` (in the launching process, so errors are plain
and name the file, row and column); each item already carries its record, so `load` does no
I/O inside Beam. Items come in order of each group's first row.
"""

import glob
import math
import os

import numpy as np

from pipelines.data.sources.source import Source

FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
_FILE, _ROW = "__file", "__row"


class TabularSequences(Source):
    name = "tabular_sequences"
    modality = "sequences"

    def _paths(self):
        path = self._option("path", None)
        if not isinstance(path, str) or not path:
            raise ValueError(f"{self.name}: option `path` (a CSV/Parquet file or a glob) is "
                             f"required; received {path!r}.")
        paths = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
        if not paths:
            raise FileNotFoundError(f"{self.name}: no file matches `path` {path!r}.")
        for p in paths:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{self.name}: file {p!r} (from `path` {path!r}) "
                                        "does not exist.")
        return paths

    def _format(self, path):
        fmt = self._option("format", None)
        if fmt is not None:
            if fmt not in ("csv", "parquet"):
                raise ValueError(f"{self.name}: option `format` must be 'csv' or 'parquet'; "
                                 f"received {fmt!r}.")
            return fmt
        for ext, found in FORMATS.items():
            if path.lower().endswith(ext):
                return found
        raise ValueError(f"{self.name}: cannot tell the format of {path!r} from its extension "
                         f"(known: {sorted(FORMATS)}); set option `format: csv|parquet`.")

    def check(self):
        for p in self._paths():
            self._format(p)
        if not self._option("group_column", None):
            raise ValueError(f"{self.name}: option `group_column` (the sequence id column) "
                             "is required.")

    def _read(self, path):
        import pandas as pd

        try:
            frame = (pd.read_csv(path) if self._format(path) == "csv"
                     else pd.read_parquet(path))
        except pd.errors.EmptyDataError:
            frame = pd.DataFrame()
        if len(frame) == 0:
            raise ValueError(f"{self.name}: {path} has no data rows (columns: "
                             f"{list(frame.columns)}).")
        # Row numbers as a user finds them: CSV line (header = line 1), Parquet row index.
        first = 2 if self._format(path) == "csv" else 0
        return frame.assign(**{_FILE: path, _ROW: np.arange(len(frame)) + first})

    def _columns(self, frame, path):
        group = self._option("group_column", None)
        order, label = self._option("order_column", None), self._option("label_column", None)
        features = self._option("feature_columns", None)
        named = [c for c in (group, order, label) if c is not None]
        if features is None:
            import pandas as pd

            features = [c for c in frame.columns if c not in named + [_FILE, _ROW]
                        and pd.api.types.is_numeric_dtype(frame[c])
                        and not pd.api.types.is_bool_dtype(frame[c])]
            if not features:
                raise ValueError(f"{self.name}: {path} has no numeric feature columns besides "
                                 f"{named} (columns: {list(frame.columns[:-2])}); set "
                                 "`feature_columns`.")
        elif (not isinstance(features, (list, tuple)) or not features
              or not all(isinstance(c, str) for c in features)):
            raise ValueError(f"{self.name}: option `feature_columns` must be a non-empty list "
                             f"of column names; received {features!r}.")
        missing = [c for c in named + list(features) if c not in frame.columns]
        if missing:
            raise ValueError(f"{self.name}: {path} lacks column(s) {missing}; it has "
                             f"{[c for c in frame.columns if c not in (_FILE, _ROW)]}.")
        return group, order, label, list(features)

    def _table(self):
        import pandas as pd

        frames, columns = [], None
        for path in self._paths():
            frame = self._read(path)
            found = self._columns(frame, path)
            if columns is not None and found[3] != columns[3]:
                raise ValueError(f"{self.name}: {path} gives feature columns {found[3]} but "
                                 f"earlier files gave {columns[3]}; set `feature_columns`.")
            columns = found
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        group, order, label, features = columns
        for name in features + [c for c in (order, label) if c is not None]:
            table[name] = self._numeric(table, name)
        if table[group].isna().any():
            self._fail(table, table[group].isna(), group, "has no group id (empty/NaN)")
        return table, columns

    def _numeric(self, table, name):
        import pandas as pd

        values = pd.to_numeric(table[name], errors="coerce").astype(np.float64)
        bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            raw = table[name][bad].iloc[0]
            what = ("is not a number" if isinstance(raw, str) else "is NaN/inf or missing")
            self._fail(table, bad, name, f"{what} ({raw!r}); values must be finite numbers")
        return values

    def _fail(self, table, mask, column, what):
        row = table[np.asarray(mask)].iloc[0]
        raise ValueError(f"{self.name}: {row[_FILE]} row {row[_ROW]}, column {column!r}: value "
                         f"{what}.")

    def items(self):
        if not hasattr(self, "_items"):
            self._items = self._build_items()
        return self._items

    def _build_items(self):
        self.check()
        table, (group, order, label, features) = self._table()
        items = []
        for gid, rows in table.groupby(group, sort=False):
            if order is not None:
                rows = rows.sort_values(order, kind="stable")
                dup = rows[order].duplicated(keep=False).to_numpy()
                if dup.any():
                    self._fail(rows, dup, order, f"repeats within group {gid!r}; frames "
                               "cannot be ordered")
            items.append((f"{self.name}/{gid}", rows[features].to_numpy(np.float32).ravel()
                          .tolist(), len(features), self._label(rows, label, gid)))
        return items

    def _label(self, rows, label, gid):
        if label is None:
            return 0
        values = rows[label].to_numpy()
        if (values != values[0]).any():
            self._fail(rows, values != values[0], label,
                       f"{values[values != values[0]][0]!r} differs from the label "
                       f"{values[0]!r} of group {gid!r}'s first row (labels must be constant "
                       "within a group)")
        if values[0] < 0 or values[0] != math.floor(values[0]):
            self._fail(rows, values == values[0], label, f"{values[0]!r} of group {gid!r} is "
                       "not an integer class >= 0")
        return int(values[0])

    def load(self, item):
        key, values, dim, label = item
        return {"key": key, "values": values, "dim": dim, "label": label}

    def metadata(self):
        items = self.items()
        labels = [item[3] for item in items]
        return {"dim": items[0][2] if items else 0,
                "num_classes": max(labels) + 1 if self._option("label_column", None) else 0,
                "sequences": len(items),
                "max_length": max((len(i[1]) // i[2] for i in items), default=0)}


def write_japanese_vowels_csv(path):
    """Write the bundled Japanese Vowels set (train and test .ts files) as a long CSV, one row
    per frame: utterance, frame, c0..c11, speaker (0..8); returns the number of rows. An
    example input for this source (`pipelines/configs/csv_sequences_mdn.yaml`)."""
    import pandas as pd

    from pipelines.data import japanese_vowels

    rows, start = [], 0
    for split in japanese_vowels.SPLITS:
        data = japanese_vowels.load(split)
        for i, (x, n, speaker) in enumerate(zip(data["x"], data["lengths"],
                                                data["global_condition"])):
            for t in range(n):
                rows.append([start + i, t, *x[t].tolist(), int(speaker)])
        start += len(data["lengths"])
    columns = ["utterance", "frame"] + [f"c{d}" for d in range(japanese_vowels.FEATURE_DIM)]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pd.DataFrame(rows, columns=columns + ["speaker"]).to_csv(path, index=False)
    return len(rows)

