"""options.py on its own, without Config or a command line: what each kind accepts and how it
stores it, what it says of a bad value (without the option's name, which config.py adds), and
how `option()` / `fixed()` declare a dataclass field."""
from __future__ import annotations

import dataclasses
import math
import os

import pytest

from evserver.options import (
    BadValue,
    Choice,
    Count,
    Each,
    FilePath,
    Flag,
    Kind,
    Logins,
    MimeTypes,
    Option,
    Port,
    Seconds,
    Switch,
    Text,
    Unset,
    Workers,
    fixed,
    header_line,
    header_value,
    network,
    option,
    origin,
    url_path,
)


@pytest.mark.parametrize(("kind", "value", "stored"), [
    (Count(), 3, 3),
    (Count(zero_off=True), 0, 0),
    (Port(), 0, 0),
    (Seconds(), 2, 2.0),
    (Unset(Port()), None, None),
    (Unset(Port()), 8443, 8443),
    (Switch(), False, False),
    (Choice("a", "b"), "b", "b"),
    (FilePath(folder=True), "www/", "www/"),
    (Text(header_value), "no-cache", "no-cache"),
    (Text(origin), "HTTPS://Example.com:8443", "https://example.com:8443"),
    (Text(url_path), "", ""),
    (Each(network), ["10.1.2.3/8", "::1"], ("10.0.0.0/8", "::1/128")),
    (Each(header_line), ("X-A:  b ",), ("X-A: b",)),
    (MimeTypes(), [".MD=text/markdown"], (".md=text/markdown",)),
    (Logins(), ("ann:secret",), ("ann:secret",)),
])
def test_a_kind_stores_a_good_value_in_one_form(kind: Kind, value: object, stored: object
                                                ) -> None:
    checked = kind.check(value)
    assert checked == stored and type(checked) is type(stored)
    assert kind.check(checked) == checked  # stored values pass again unchanged


@pytest.mark.parametrize(("kind", "value", "message"), [
    (Count(), 0, "must be positive, not 0"),
    (Count(), True, "must be an integer, not True"),
    (Port(), 65536, "must be between 0 and 65535, not 65536"),
    (Seconds(), math.nan, "must be positive, not nan"),
    (Seconds(), "1", "must be a number, not '1'"),
    (Switch(), "yes", "must be true or false, not 'yes'"),
    (Choice("a", "b", "c"), "d", "must be a, b or c, not 'd'"),
    (FilePath(), "logs/", "must be a path, not 'logs/'"),
    (Unset(FilePath()), "", "must be a path, not ''"),
    (Each(), "x", "must be a list of strings, not 'x'"),
    (Each(header_line), ["Server: x"], "cannot set Server: evserver writes it itself"),
    (Text(url_path), "x", "must start with /, not 'x'"),
    (Logins(), ("bob",), "#1: expected USER:PASSWORD (non-empty)"),
])
def test_a_kind_says_what_is_wrong_without_the_option(kind: Kind, value: object, message: str
                                                      ) -> None:
    with pytest.raises(BadValue) as info:
        kind.check(value)
    assert str(info.value) == message


def test_text_from_a_flag_and_values_from_a_file_are_converted() -> None:
    assert Count().parse("12") == 12
    assert Seconds().parse("0.5") == 0.5
    with pytest.raises(BadValue, match=r"^must be an integer, not '1\.5'$"):
        Count().parse("1.5")
    assert Workers().parse("auto") == Workers().from_toml("auto", "workers") == (os.cpu_count()
                                                                                or 1)
    assert Each().from_toml("one", "header") == ["one"]
    assert MimeTypes().from_toml({".md": "text/markdown"}, "mime-types") == [".md=text/markdown"]
    with pytest.raises(BadValue, match=r'^mime-types\.".md" must be a string, not 1$'):
        MimeTypes().from_toml({".md": 1}, "mime-types")


@dataclasses.dataclass(frozen=True)
class Sample:
    count: int = option(3, Count(), "-n", "--count", group="work", help="how many")
    delay: float = fixed(1.0, Seconds())


def test_option_and_fixed_declare_fields_of_any_dataclass() -> None:
    count, delay = dataclasses.fields(Sample)
    assert Sample() == Sample(count=3, delay=1.0)
    spec = count.metadata["option"]
    assert isinstance(spec, Option) and isinstance(count.metadata["kind"], Count)
    assert (spec.long, spec.key, spec.off_key) == ("--count", "count", None)
    assert "option" not in delay.metadata and isinstance(delay.metadata["kind"], Seconds)


def test_an_options_off_switch_and_group() -> None:
    log = Option(kind=Unset(FilePath()), flags=("--log",), group="where", help="a log",
                 off=("--no-log", "no log"))
    assert (log.key, log.off_key) == ("log", "no-log")
    with pytest.raises(ValueError, match="^--x: unknown group 'nowhere'$"):
        Flag(flags=("--x",), group="nowhere", help="x")
