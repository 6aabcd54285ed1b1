"""``carepath serve`` keeps itself on one CPU (``api.cpu``): the choice, and the real thing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api import cli, cpu
from tests.api.test_cli import run


@pytest.mark.parametrize(
    ("text", "choice"),
    [("auto", "auto"), (" AUTO ", "auto"), ("off", "off"), ("0", 0), ("17", 17)],
)
def test_a_choice_is_auto_off_or_a_number(text, choice):
    assert cpu.parse(text) == choice


@pytest.mark.parametrize("text", ["", "-1", "1.5", "all", "0,1"])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError, match="auto, off or a CPU number"):
        cpu.parse(text)


@pytest.mark.parametrize(
    ("choice", "allowed", "current", "kept_on"),
    [
        ("auto", {0, 1}, 1, 1),  # where it runs
        ("auto", {0, 1, 2, 3}, 2, 2),
        ("auto", {2, 3}, None, 2),  # /proc does not say: the first it may use
        ("auto", {2, 3}, 0, 2),  # a stale reading outside the set: likewise
        ("auto", {5}, 5, None),  # one CPU already: nothing to do
        ("off", {0, 1}, 0, None),
        (1, {0, 1}, 0, 1),
        (0, {0}, 0, 0),
    ],
)
def test_the_cpu_chosen(choice, allowed, current, kept_on):
    assert cpu.choose(choice, allowed, current) == kept_on


def test_a_cpu_the_process_may_not_use_is_refused():
    with pytest.raises(ValueError, match=r"CPU 4 is not one this process may run on \(0, 1\)"):
        cpu.choose(4, {0, 1}, 0)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux's /proc only")
def test_the_cpu_running_on_is_one_the_process_may_use():
    assert cpu.running_on() in os.sched_getaffinity(0)


def affinity(monkeypatch, allowed: set[int], running: int | None) -> list[tuple[int, set[int]]]:
    """The OS's affinity calls, faked (present on any OS: ``raising=False``): the process may
    run on ``allowed`` and runs on ``running``; returns the list ``sched_setaffinity`` fills."""
    moved: list[tuple[int, set[int]]] = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda _task: set(allowed), raising=False)
    monkeypatch.setattr(
        os, "sched_setaffinity", lambda task, cpus: moved.append((task, cpus)), raising=False
    )
    monkeypatch.setattr(cpu, "running_on", lambda: running)
    return moved


def test_serve_refuses_a_cpu_it_may_not_use_before_anything_starts(capsys, monkeypatch):
    moved = affinity(monkeypatch, {0, 1}, 0)
    started = []
    monkeypatch.setattr(cli, "prepare_database", lambda: started.append("database"))
    status, out, err = run(capsys, "serve", "--cpu", "2")
    assert (status, out, started, moved) == (2, "", [], [])
    assert "--cpu: CPU 2 is not one this process may run on (0, 1)" in err


def test_serve_refuses_a_malformed_cpu_as_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--cpu", "both"])
    assert exited.value.code == 2
    assert "auto, off or a CPU number" in capsys.readouterr().err


def test_a_process_not_allowed_to_choose_its_cpu_is_left_where_it_may_run(monkeypatch):
    affinity(monkeypatch, {0, 1}, 1)
    asked: list[int] = []

    def refuse(_task: int, cpus: set[int]) -> None:
        asked.extend(cpus)
        raise PermissionError("not in this container")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    assert cpu.keep_on_one("auto") is None
    assert asked == [1]  # it tried the CPU it runs on, once, and gave up


def test_every_thread_already_running_is_moved_too(monkeypatch):
    moved = affinity(monkeypatch, {0, 1, 2}, 2)
    monkeypatch.setattr(cpu, "_other_threads", lambda: [101, 102])
    assert cpu.keep_on_one("auto") == 2
    assert moved == [(0, {2}), (101, {2}), (102, {2})]


def test_serve_names_the_setting_when_the_cpu_came_from_it(capsys, monkeypatch):
    moved = affinity(monkeypatch, {0, 1}, 0)
    monkeypatch.setattr(cli.settings, "serve_cpu", "2")
    status, _, err = run(capsys, "serve")
    assert (status, moved) == (2, [])
    assert "CAREPATH_SERVE_CPU: CPU 2 is not one this process may run on" in err
