"""Property: whatever a config file holds, `parse_config` returns a config or raises
`ConfigError` whose every problem has a message; no other exception, ever.

The files are the demo config mutated: values of random types and magnitudes at random key
paths (inf, nan, huge integers, negatives, strings, lists), keys added and removed, the YAML
text cut and spliced, anchors and aliases (bombs, recursion) injected, the bytes re-encoded
and flipped, SHOPFLOOR_* overrides set. Seeded (derandomize) and bounded: a few seconds.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import DEMO_CONFIG, ConfigError, ShopfloorConfig, parse_config
from config.loader import env_override_names

BASE_TEXT = DEMO_CONFIG.read_text()
BASE = yaml.load(BASE_TEXT, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

PathT = tuple[str | int, ...]


def key_paths(data: Any, prefix: PathT = ()) -> list[PathT]:
    """Every key path of the data, containers included."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += key_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += key_paths(value, (*prefix, i))
    return found


PATHS = key_paths(BASE)

SPECIAL_NUMBERS = [0, -1, 1, 2**15, 2**16, 2**31, 2**32, 2**40, 2**63, 2**64, 10**30, -(2**31) - 1]
SPECIAL_FLOATS = [1e-9, 1e-300, 5e-324, 1e300, -0.0, 0.5, 86400.0, 1e15]
SPECIAL_TEXT = [
    "06:00",
    "24:00",
    "99:99",
    "6:00+01:00",
    "${NOPE}",
    "${HOME}",
    "not-a-url",
    "postgresql://u:p@[::1",
    " " * 20,
    "running",
    "opc.tcp://[::1",
    "opc.tcp://h:99999",
    "ns=²;s=x",
    "a/#/b",
    "{machine}/{nope}",
    "2026-13-45",
    "\u2028",
    "é" * 40,
    "x" * 300,
    "Europe",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(SPECIAL_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL_FLOATS),
    st.text(max_size=30),
    st.sampled_from(SPECIAL_TEXT),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers(-3, 3)), scalars, max_size=3),
)


def near(original: Any) -> st.SearchStrategy[Any]:
    """Values of the original's type around it: a prefix of a name, a number scaled far off."""
    if isinstance(original, bool):
        return st.booleans()
    if isinstance(original, int):
        return st.sampled_from([0, -1, original - 1, -original, original * 1000, original * 2**40])
    if isinstance(original, float):
        return st.sampled_from([0.0, -original, original * 1e-9, original * 1e9, float("inf")])
    if isinstance(original, str):
        return st.one_of(
            st.integers(0, len(original)).map(lambda n: original[:n]),
            st.text(max_size=5).map(lambda tail: original + tail),
        )
    return values


def _holds(container: Any, key: Any) -> bool:
    """Whether container[key] is there: earlier edits may have replaced or shrunk it."""
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and isinstance(key, int) and key < len(container)


def _parent(doc: Any, path: PathT) -> Any | None:
    for part in path[:-1]:
        if not _holds(doc, part):
            return None
        doc = doc[part]
    return doc if _holds(doc, path[-1]) else None


@st.composite
def mutated_data(draw: st.DrawFn) -> Any:
    """The demo's data with one to four values set, keys added and keys removed."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = _parent(doc, path)
        if parent is None:
            continue
        action = draw(st.sampled_from(["set", "set", "delete", "add"]))
        if action == "set":
            parent[path[-1]] = draw(st.one_of(values, near(parent[path[-1]])))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
    return doc


def dump(doc: Any) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True)


INJECTIONS = [
    "x: &a [*a]\n",
    "x: &a {<<: *a}\n",
    'a: &a ["l","l","l","l","l","l","l","l","l"]\n'
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
    ),
    "y: " + "[" * 80 + "]" * 80 + "\n",
    "z: !!python/object/apply:os.system [ls]\n",
    "z: !!binary aGVsbG8=\n",
    "z: !!timestamp 2026-02-30\n",
    "z: !!float abc\n",
    "z: 1:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\n",
    "---\nsecond: document\n",
    "? [a, b]\n: c\n",
    "<<: {plant: merged}\n",
]


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """The demo's YAML text, cut, spliced, and with anchors, aliases and oddities injected."""
    text = dump(draw(mutated_data())) if draw(st.booleans()) else BASE_TEXT
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "cut", "inject", "anchor", "line"]))
        if action == "insert":
            text = text[:at] + draw(st.text(max_size=12)) + text[at:]
        elif action == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 200)) :]
        elif action == "inject":
            text = draw(st.sampled_from(INJECTIONS)) + text
        elif action == "anchor":  # anchor a flow collection, alias it further down
            start = text.find("{", at)
            if start >= 0:
                text = text[:start] + "&q " + text[start:]
                colon = text.find(": ", start + 40)
                if colon >= 0:
                    end = text.find("\n", colon)
                    text = text[: colon + 2] + "*q" + text[end if end >= 0 else len(text) :]
        else:
            lines = text.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines.insert(i, lines[i])
                text = "".join(lines)
    return text


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    """A mutated text in some encoding, with bytes flipped or inserted."""
    text = draw(mutated_text()) if draw(st.booleans()) else BASE_TEXT.replace("Filler", "Füller")
    data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at + 1 :]
    return data


overrides = st.dictionaries(
    st.sampled_from(sorted(env_override_names())),
    st.one_of(st.sampled_from(["0", "-1", "1e-9", "inf", "nan", "", "x", "1e400"]), st.text()),
    max_size=2,
)


def assert_config_or_config_error(source: str | bytes, env: dict[str, str]) -> None:
    try:
        cfg = parse_config(source, env=env)
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert isinstance(problem.path, str)
            assert problem.message.strip(), problem
            assert problem.line is None or problem.line >= 1
        return
    assert isinstance(cfg, ShopfloorConfig)
    # what callers do next with a valid config must not raise either
    cfg.security_warnings()
    cfg.reference_problems()


FUZZ = settings(
    derandomize=True,
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(doc=mutated_data(), env=overrides)
def test_values_of_any_type_and_size_at_any_key(doc: Any, env: dict[str, str]) -> None:
    assert_config_or_config_error(dump(doc), env)


@FUZZ
@given(text=mutated_text())
def test_yaml_text_cut_spliced_and_aliased(text: str) -> None:
    assert_config_or_config_error(text, {})


@FUZZ
@given(data=mutated_bytes())
def test_bytes_in_any_encoding(data: bytes) -> None:
    assert_config_or_config_error(data, {})
