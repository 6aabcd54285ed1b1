"""One dispatcher pass in a fresh process, as a restarted scheduler would run it.

Usage: ``python -m tests.schedules.dispatch_once URL AT [crash]``. It logs each
delivery to stdout. With ``crash`` the process dies (``os._exit``) inside the
first delivery, after its claim and before its outcome is written.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime

from models.db import make_engine
from models.settings import Settings
from schedules.dispatcher import Dispatcher
from schedules.notifiers import Delivery, LogNotifier, Notifier


class Crash:
    """Dies in the middle of a delivery, as a killed process would."""

    def notify(self, delivery: Delivery) -> None:
        os._exit(3)


def main(url: str, at: str, mode: str = "") -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")
    clock = datetime.fromisoformat(at)
    notifiers: list[Notifier] = [LogNotifier(), Crash()] if mode == "crash" else [LogNotifier()]
    rules = Settings(webhook_url=None)
    Dispatcher(make_engine(url), notifiers=notifiers, clock=lambda: clock, rules=rules).run_pass()


if __name__ == "__main__":
    main(*sys.argv[1:])
