"""Embedding calls made together become one request (streams/llm/batching.py)."""

import asyncio


from streams.llm.batching import EmbedBatcher


def test_calls_of_one_round_share_a_request_and_get_their_own_rows():
    sent = []

    async def send(texts, sim_id, round):
        sent.append((list(texts), sim_id, round))
        return [[float(len(t))] for t in texts]

    async def go():
        batcher = EmbedBatcher(send, window_ms=5)
        got = await asyncio.gather(batcher.embed(["a", "bb"], "s", 1), batcher.embed(["ccc"], "s", 1),
                                   batcher.embed(["dddd"], "t", 1))
        await batcher.aclose()
        return got

    got = asyncio.run(go())
    assert got == [[[1.0], [2.0]], [[3.0]], [[4.0]]]
    assert sorted(sent) == [(["a", "bb", "ccc"], "s", 1), (["dddd"], "t", 1)]  # one per simulation round


def test_a_failed_request_fails_every_call_in_it():
    async def send(texts, sim_id, round):
        raise RuntimeError("server away")

    async def go():
        batcher = EmbedBatcher(send, window_ms=1)
        return await asyncio.gather(batcher.embed(["a"], "s", 0), batcher.embed(["b"], "s", 0),
                                    return_exceptions=True)

    assert [str(e) for e in asyncio.run(go())] == ["server away", "server away"]


def test_a_full_group_goes_at_once():
    sizes = []

    async def send(texts, sim_id, round):
        sizes.append(len(texts))
        return [[0.0]] * len(texts)

    async def go():
        batcher = EmbedBatcher(send, window_ms=10_000)  # only being full can send it in time
        return await asyncio.wait_for(batcher.embed(["x"] * EmbedBatcher.MAX_TEXTS, "s", 0), timeout=5)

    assert len(asyncio.run(go())) == EmbedBatcher.MAX_TEXTS and sizes == [EmbedBatcher.MAX_TEXTS]
