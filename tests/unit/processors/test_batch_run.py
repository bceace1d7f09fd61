"""processors.batch.run: asyncio.run without repr() of the result."""

from __future__ import annotations

from processors.batch import run


class Costly:
    reprs = 0

    def __repr__(self) -> str:
        Costly.reprs += 1
        return "Costly()"


async def produce() -> Costly:
    return Costly()


def test_run_returns_the_result_and_never_reprs_it():
    import asyncio

    Costly.reprs = 0
    asyncio.run(produce())
    assert Costly.reprs == 2  # what asyncio.run itself does (CPython #112559), the reason for run
    Costly.reprs = 0
    assert isinstance(run(produce()), Costly)
    assert Costly.reprs == 0
