"""``simkit serve``: the simulated world of a scenario in real time, as HTTP servers on 127.0.0.1.

A top layer beside ``report`` and ``bench``: it drives :mod:`simkit.sim`'s World (simpy) and may
use :mod:`simkit.live`, which ``sim`` and ``live`` themselves must never do to each other.
"""
