"""Parser for the repetition-counting annotation CSVs: RepCount-A (`*_with_fps.csv`) and UCFRep
(`new_train.csv` / `new_val.csv`), as distributed with ESCounts (sinhasaptarshi/EveryShotCounts @ f18fcf1).

RepCount-A: `<unnamed index columns>, type, name, count, L1..L302, fps, duration, num_frames,
segment_start, segment_end, cycle_start_id`. UCFRep: `<index>, name (UCF-101/<Action>/<v_…>.avi), counts,
num_frames, start_frame, end_frame, L1..L300`. `L1, L2, …` are (start, end) frame pairs of each repetition
cycle at the video's native fps, as floats ("20.0"); trailing cells are empty. UCFRep's `num_frames` is the
length of the counted segment (end_frame − start_frame + 1), not of the video.

Every quirk is reported as an `Anomaly` (audible623_csv.Anomaly) and handled by a fixed rule:
    odd_boundaries    an odd number of L values: the unpaired last value is dropped
    reversed_cycle    end < start: the pair is dropped
    float_frame       a non-integer frame: rounded
    count_mismatch    count ≠ number of cycles: the annotated count is kept (it is what counting is scored
                      against); the cycles are kept too
    overlapping_cycles a cycle starts before the previous one ends: kept
    zero_count        count 0 / no cycles: kept (a negative example for counting)
    action_alias      a type spelled several ways (squant → squat …): canonical name, raw kept
    missing_name, bad_count: row skipped
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re

from input_pipeline.datasets.audible623_csv import Anomaly

# RepCount-A's `type` column spells several actions two ways.
ACTION_ALIASES = {
    "squant": "squat",
    "frontraise": "front_raise",
    "benchpressing": "bench_pressing",
    "jumpjacks": "jump_jack",
    "pullups": "pull_up",
    "pushups": "push_up",
}


@dataclasses.dataclass
class CountRow:
    key: str  # the video id: file stem of `name`
    name: str  # as in the CSV
    action: str
    action_raw: str
    count: int
    cycles: tuple[tuple[int, int], ...]
    fps: float | None  # the CSV's fps column (RepCount only)
    segment: tuple[int, int] | None  # counted segment (start, end) in frames, if the CSV has one
    file: str
    line: int

    @property
    def boundaries(self) -> tuple[int, ...]:
        """Event frames: every cycle start and end, sorted and de-duplicated (see docs/datasets.md)."""
        return tuple(sorted({f for cycle in self.cycles for f in cycle}))


def _num(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def parse_count_csv(text: str, file: str = "<string>") -> tuple[list[CountRow], list[Anomaly]]:
    """Parses a RepCount-A or UCFRep CSV (format detected from the header). Raises ValueError naming the file
    if neither `type,name,count` nor `name,counts` columns are present."""
    anomalies: list[Anomaly] = []
    note = lambda kind, line, vid, detail: anomalies.append(Anomaly(kind, file, line, vid, detail))
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = reader.fieldnames or []
    count_col = "count" if "count" in header else "counts" if "counts" in header else None
    if "name" not in header or count_col is None:
        raise ValueError(
            f"{file}: header has no 'name' and 'count'/'counts' columns; not a RepCount-A or "
            f"UCFRep annotation file ({','.join(header[:8])}…)"
        )
    l_cols = sorted((h for h in header if re.fullmatch(r"L\d+", h or "")), key=lambda h: int(h[1:]))
    rows: list[CountRow] = []
    raw_actions: dict[str, dict[str, int]] = {}
    for record in reader:
        line = reader.line_num
        name = (record.get("name") or "").strip()
        if not name:
            note("missing_name", line, "", "no video name; row skipped")
            continue
        key = os.path.splitext(os.path.basename(name))[0]
        count = _num(record.get(count_col, ""))
        if count is None or count < 0 or not float(count).is_integer():
            note("bad_count", line, key, f"count {record.get(count_col)!r} is not a non-negative integer; row skipped")
            continue
        values = [_num(record[h]) for h in l_cols if (record.get(h) or "").strip()]
        if any(v is None for v in values):
            note("bad_count", line, key, "a cycle boundary is not a number; row skipped")
            continue
        if any(not v.is_integer() for v in values):
            note("float_frame", line, key, "non-integer cycle frames rounded")
        frames = [int(round(v)) for v in values]
        if len(frames) % 2:
            note(
                "odd_boundaries",
                line,
                key,
                f"{len(frames)} boundary values; the unpaired last one ({frames[-1]}) dropped",
            )
            frames = frames[:-1]
        cycles = []
        for start, end in zip(frames[::2], frames[1::2]):
            if end < start:
                note("reversed_cycle", line, key, f"cycle ({start}, {end}) ends before it starts; dropped")
                continue
            cycles.append((start, end))
        if any(b[0] < a[1] for a, b in zip(cycles, cycles[1:])):
            note("overlapping_cycles", line, key, "a cycle starts before the previous one ends; kept")
        if int(count) != len(cycles):
            note("count_mismatch", line, key, f"count {int(count)} but {len(cycles)} cycles; the count is kept")
        if int(count) == 0:
            note("zero_count", line, key, "count 0: kept as a video without repetitions")
        if "type" in header:
            action_raw = (record.get("type") or "").strip()
        else:  # UCFRep: the UCF101 action folder, or the action in the file name
            parts = name.replace("\\", "/").split("/")
            m = re.match(r"^v_([A-Za-z]+)_g", key)
            action_raw = parts[-2] if len(parts) >= 2 else (m.group(1) if m else "")
        action = ACTION_ALIASES.get(action_raw.casefold(), action_raw.casefold())
        raw_actions.setdefault(action, {}).setdefault(action_raw, 0)
        raw_actions[action][action_raw] += 1
        if "segment_start" in header:
            seg = (_num(record.get("segment_start", "")), _num(record.get("segment_end", "")))
        else:
            seg = (_num(record.get("start_frame", "")), _num(record.get("end_frame", "")))
        segment = (int(seg[0]), int(seg[1])) if None not in seg else None
        rows.append(
            CountRow(
                key,
                name,
                action,
                action_raw,
                int(count),
                tuple(cycles),
                _num(record.get("fps", "")),
                segment,
                file,
                line,
            )
        )
    for action, spellings in sorted(raw_actions.items()):
        if len(spellings) > 1:
            listed = ", ".join(f"{raw!r} ×{n}" for raw, n in sorted(spellings.items()))
            anomalies.append(Anomaly("action_alias", file, 0, "", f"{listed} → {action!r}"))
    seen: dict[str, int] = {}
    for row in rows:
        seen[row.key] = seen.get(row.key, 0) + 1
        if seen[row.key] > 1:
            note("duplicate_id", row.line, row.key, "video listed again; kept as a separate example")
            row.key = f"{row.key}#{seen[row.key]}"
    return rows, anomalies


def read_count_csv(path: str) -> tuple[list[CountRow], list[Anomaly]]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such annotation file")
    with open(path, encoding="utf-8-sig", newline="") as f:
        return parse_count_csv(f.read(), path)
