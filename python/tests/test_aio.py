"""meshbus.aio: the node driven by the event loop (add_reader on its fd)."""
import asyncio
import threading

import pytest

import meshbus
import meshbus.aio
from conftest import WAIT


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_usage_call_serve_subscribe(mesh):
    async def main():
        kw = dict(cluster=mesh.cluster, port=mesh.port)
        async with meshbus.aio.Node("server", **kw) as server, \
                meshbus.aio.Node("client", **kw) as client:
            async def double(req):
                await asyncio.sleep(0.01)
                return b"%d" % (2 * int(req.body))
            await server.serve("double", double)
            await server.serve("sync.upper", lambda r: r.body.upper())
            await client.wait_providers("double", 1, WAIT)
            await client.wait_providers("sync.upper", 1, WAIT)
            replies = await asyncio.gather(*[client.call("double", b"%d" % i)
                                             for i in range(50)])
            assert [r.body for r in replies] == [b"%d" % (2 * i) for i in range(50)]
            assert (await client.call("sync.upper", b"x")).body == b"X"
            sub = client.subscribe("news.#")
            await server.wait_subscribers("news.a", 1, WAIT)
            server.publish("news.a", b"1")
            server.publish("news.b", b"2")
            got = []
            async for msg in sub:
                got.append(msg.body)
                if len(got) == 2:
                    break
            assert got == [b"1", b"2"]
            with pytest.raises(meshbus.Timeout):
                await sub.get(timeout=0.1)
            assert threading.active_count() == start_threads
    start_threads = threading.active_count()
    run(main())


def test_remote_errors_and_async_workers(mesh):
    async def main():
        kw = dict(cluster=mesh.cluster, port=mesh.port)
        async with meshbus.aio.Node("a", **kw) as a, meshbus.aio.Node("b", **kw) as b:
            async def fails(req):
                raise RuntimeError("async boom")
            await a.serve("fails", fails)
            done = []

            async def work(job):
                await asyncio.sleep(0.001)
                if job.deliveries == 1 and job.body == b"3":
                    raise ValueError("retry me")
                done.append(job.body)
            await a.work("aq", work, prefetch=4)
            await b.wait_providers("fails", 1, WAIT)
            with pytest.raises(meshbus.RemoteError, match="async boom"):
                await b.call("fails")
            for i in range(10):
                b.push("aq", b"%d" % i, backoff=0.01)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            while b.pending() and loop.time() < deadline:
                await asyncio.sleep(0.02)
            assert b.pending() == 0
            assert sorted(done) == sorted(b"%d" % i for i in range(10))
    run(main())
