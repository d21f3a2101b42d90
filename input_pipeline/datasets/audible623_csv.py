"""Parser and cleaner for Audible623-format label files (`video_id,sound_label,class`).

The official `data_train.csv` / `data_eval.csv` (WenlongWan/Audible623 @ a334707) have quirks that crash
the original loader or change its labels silently (docs/original.md §8.4). Every quirk is handled
here by a fixed rule and reported as an `Anomaly`; nothing is dropped or changed without a record.
The rules (also in docs/datasets.md):

| kind               | example                          | rule                                                    |
|--------------------|----------------------------------|---------------------------------------------------------|
| `extra_fields`     | `ApQlzehYyfo,"14,…",Boxing…,23,33` | keep the first 3 fields; two integer extras are kept as the YouTube segment (start_s, end_s), which also picks a Kinetics-named file `<id>_000023_000033.mp4` |
| `missing_fields`   | `abc,"1,2"`                      | row skipped                                             |
| `empty_id`         | `,"1,2",hammer`                  | row skipped                                             |
| `bad_label`        | `"12,x"`                         | row skipped (one bad token makes the row untrustworthy)|
| `float_label`      | `"12.0"`                         | integer-valued floats accepted                          |
| `sentinel`         | `-1` / `-2`                      | "no sound": the row has no events (the loader's rule)   |
| `negative_index`   | `-5`                             | index dropped                                           |
| `unsorted`         | `NzIe5WsVAl0` "39,37"            | sorted (the suspicious value, e.g. 19 among 107,…,120, is kept, not guessed) |
| `duplicate_index`  | `fVU85a0AhQI` 61 twice           | de-duplicated                                           |
| `beyond_cap`       | index 307 ≥ max_frames 300       | kept here; the builder drops indices past the decoded video (the original's 300-frame cap) |
| `no_labels`        | `""`                             | kept, no events                                         |
| `whitespace`       | `" hammer "`                     | stripped                                                |
| `duplicate_id`     | `GA1p9iU0HlY` twice              | both rows kept as separate examples (the original's behaviour); the second gets the key `GA1p9iU0HlY#2` |
| `class_alias`      | `drumming` / `Drumming`          | canonical class name (CLASS_ALIASES); the raw string is kept |
| `unknown_class`    | `kazoo`                          | kept, canonical name = lower-case with `_`              |
| `split_overlap`    | an id in train and eval          | kept in the evaluation split only (no test leakage)     |
| `blank_line`       | an empty line mid-file           | skipped                                                 |

Line endings (CRLF, LF, CR), a UTF-8 BOM and quoted or unquoted label lists are accepted silently: they do
not change any value.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re

from input_pipeline import paths

HEADER = ("video_id", "sound_label", "class")
SENTINELS = (-1, -2)  # the original loader's "no sound" markers
DEFAULT_MAX_FRAMES = 300  # the original's max_len

# Canonical class name for each raw class string, by its case-folded form. Audible623 mixes UCF101
# action names, short YouTube class names, a truncated name and two spellings of the same class.
CLASS_ALIASES = {
    "hammer": "hammer",
    "juggling": "juggling",
    "pingpong": "pingpong",
    "tennis": "tennis",
    "bouncing": "bouncing",
    "tapping": "tapping",
    "battlerope": "battlerope",
    "clapping": "clapping",
    "cymbal": "cymbal",
    "triangle": "triangle",
    "drumming": "drumming",  # "Drumming" (UCF101) and "drumming" (YouTube)
    "boxingpunchin": "boxing_punching_bag",  # truncated in the CSV
    "boxingpunchingbag": "boxing_punching_bag",
    "cutting&slicing": "cutting_slicing",
    "slicing": "cutting_slicing",
    "cuttinginkitchen": "cutting_slicing",
    "soccerjuggling": "soccer_juggling",
    "tennisswing": "tennis_swing",
    "golfswing": "golf_swing",
    "cricketshot": "cricket_shot",
}
UCF101_ID = re.compile(r"^v_(?P<action>[A-Za-z]+)_g(?P<group>\d+)_c(?P<clip>\d+)$")


@dataclasses.dataclass
class Anomaly:
    kind: str
    file: str
    line: int  # 1-based line of the CSV (0: not tied to a line)
    video_id: str
    detail: str

    def __str__(self) -> str:
        where = f"{os.path.basename(self.file)}:{self.line}" if self.line else os.path.basename(self.file)
        return f"{where} {self.video_id or '-'} [{self.kind}] {self.detail}"


@dataclasses.dataclass
class LabelRow:
    """One cleaned row. `frames`: sorted unique 0-based frame indices at the native fps."""

    key: str  # unique example key within the split: video_id, or video_id#k for repeats
    video_id: str
    frames: tuple[int, ...]
    class_raw: str
    class_name: str
    sound_label_raw: str
    file: str
    line: int
    segment: tuple[int, int] | None = None  # (start_s, end_s) from the 2 extra fields, if present

    @property
    def source(self) -> str:
        """'ucf101' for `v_<Action>_gXX_cYY` ids, else 'youtube' (Kinetics)."""
        return "ucf101" if UCF101_ID.match(self.video_id) else "youtube"


def canonical_class(raw: str) -> str:
    folded = raw.strip().casefold()
    return CLASS_ALIASES.get(folded) or re.sub(r"[^0-9a-z]+", "_", folded).strip("_")


def _parse_index(token: str) -> int | None:
    try:
        return int(token)
    except ValueError:
        value = float(token)  # raises ValueError for non-numbers
        return int(value) if value.is_integer() else None


def parse_label_csv(
    text: str, file: str = "<string>", *, max_frames: int = DEFAULT_MAX_FRAMES
) -> tuple[list[LabelRow], list[Anomaly]]:
    """Parses and cleans one Audible623-format CSV text (see the module docstring for every rule).

    Returns (rows in file order, anomalies). Raises ValueError naming the file if the header is not
    `video_id,sound_label,class` (extra header columns after those three are allowed).
    """
    anomalies: list[Anomaly] = []
    note = lambda kind, line, vid, detail: anomalies.append(Anomaly(kind, file, line, vid, detail))
    text = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{file}: empty file; expected the header {','.join(HEADER)}") from None
    if tuple(h.strip().lstrip("\ufeff") for h in header[:3]) != HEADER:
        raise ValueError(f"{file}: header is {','.join(header)!r}; expected {','.join(HEADER)}")
    rows: list[LabelRow] = []
    seen: dict[str, list[LabelRow]] = {}
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            note("blank_line", line, "", "empty line skipped")
            continue
        if len(fields) < 3:
            note("missing_fields", line, fields[0].strip(), f"{len(fields)} fields, 3 needed; row skipped")
            continue
        if any(f != f.strip() for f in fields[:3]):
            note("whitespace", line, fields[0].strip(), "leading/trailing spaces stripped")
        video_id, label_text, class_raw = (f.strip() for f in fields[:3])
        segment = None
        if len(fields) > 3:
            extra = [f.strip() for f in fields[3:]]
            if len(extra) == 2 and all(re.fullmatch(r"\d+", e) for e in extra):
                segment = (int(extra[0]), int(extra[1]))
                note(
                    "extra_fields",
                    line,
                    video_id,
                    f"2 extra fields {extra[0]},{extra[1]} kept as the segment (start_s, end_s); first 3 fields used",
                )
            else:
                note("extra_fields", line, video_id, f"{len(extra)} extra field(s) {extra} ignored")
        if not video_id:
            note("empty_id", line, "", "no video_id; row skipped")
            continue
        tokens = [t for t in re.split(r"[,;\s]+", label_text) if t]
        try:
            values = [_parse_index(t) for t in tokens]
        except ValueError:
            values = [None]
        if any(v is None for v in values):
            note("bad_label", line, video_id, f"sound_label {label_text!r} has a non-integer entry; row skipped")
            continue
        if any("." in t for t in tokens):
            note("float_label", line, video_id, f"integer-valued floats in {label_text!r} read as integers")
        if not values:
            note("no_labels", line, video_id, "empty sound_label: kept with no events")
        if any(v in SENTINELS for v in values):
            note("sentinel", line, video_id, f"'no sound' sentinel in {label_text!r}: kept with no events")
            values = []
        negative = [v for v in values if v < 0]
        if negative:
            note("negative_index", line, video_id, f"negative indices {negative} dropped")
            values = [v for v in values if v >= 0]
        inversions = [(a, b) for a, b in zip(values, values[1:]) if b < a]
        if inversions:
            note(
                "unsorted",
                line,
                video_id,
                "indices sorted; out of order: " + ", ".join(f"{a} before {b}" for a, b in inversions),
            )
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            note("duplicate_index", line, video_id, f"repeated indices {repeated} de-duplicated")
        frames = tuple(sorted(set(values)))
        beyond = [v for v in frames if v >= max_frames]
        if beyond:
            note(
                "beyond_cap",
                line,
                video_id,
                f"indices {beyond} ≥ {max_frames} (the original's frame cap) are lost if the video is cut there",
            )
        class_name = canonical_class(class_raw)
        if class_raw.casefold() not in CLASS_ALIASES:
            note("unknown_class", line, video_id, f"class {class_raw!r} not in the known list; named {class_name!r}")
        previous = seen.setdefault(video_id, [])
        key = video_id if not previous else f"{video_id}#{len(previous) + 1}"
        if previous:
            same = any(p.frames == frames for p in previous)
            note(
                "duplicate_id",
                line,
                video_id,
                f"also on line(s) {', '.join(str(p.line) for p in previous)} with "
                f"{'the same' if same else 'different'} labels; kept as a separate example {key!r}",
            )
        row = LabelRow(key, video_id, frames, class_raw, class_name, label_text, file, line, segment)
        previous.append(row)
        rows.append(row)
    _note_class_aliases(rows, file, anomalies)
    return rows, anomalies


def _note_class_aliases(rows: list[LabelRow], file: str, anomalies: list[Anomaly]) -> None:
    """One `class_alias` anomaly per canonical class spelled in more than one way, or renamed."""
    spellings: dict[str, dict[str, int]] = {}
    for r in rows:
        counts = spellings.setdefault(r.class_name, {})
        counts[r.class_raw] = counts.get(r.class_raw, 0) + 1
    for name, counts in sorted(spellings.items()):
        if len(counts) > 1 or next(iter(counts)) != name:
            listed = ", ".join(f"{raw!r} ×{n}" for raw, n in sorted(counts.items()))
            anomalies.append(Anomaly("class_alias", file, 0, "", f"{listed} → {name!r}"))


def read_label_csv(path: str, *, max_frames: int = DEFAULT_MAX_FRAMES) -> tuple[list[LabelRow], list[Anomaly]]:
    """`parse_label_csv` on a file or `gs://` URL (UTF-8, BOM allowed). Raises FileNotFoundError/ValueError naming it."""
    if not paths.isfile(path):
        raise FileNotFoundError(f"{path}: no such label file")
    try:  # bytes decoded as they are: no newline translation, as the csv module wants
        text = paths.read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from None
    return parse_label_csv(text, path, max_frames=max_frames)


def resolve_split_overlap(
    splits: dict[str, list[LabelRow]], keep_in: str
) -> tuple[dict[str, list[LabelRow]], list[Anomaly]]:
    """Removes from every other split the video ids that `keep_in` (the evaluation split) also has."""
    held = {r.video_id for r in splits.get(keep_in, [])}
    out, anomalies = {}, []
    for split, rows in splits.items():
        if split == keep_in:
            out[split] = rows
            continue
        out[split] = [r for r in rows if r.video_id not in held]
        for r in rows:
            if r.video_id in held:
                anomalies.append(
                    Anomaly(
                        "split_overlap",
                        r.file,
                        r.line,
                        r.video_id,
                        f"also in the {keep_in} split; removed from {split}",
                    )
                )
    return out, anomalies
