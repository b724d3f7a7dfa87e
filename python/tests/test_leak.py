"""1 000 000 messages published and received in one process: RSS stays
flat (bounded growth after the first 100 000, asserted loosely)."""
import resource

import meshbus
from conftest import WAIT


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_one_million_messages_keep_rss_flat(mesh):
    pub = mesh.node("pub")
    sub_node = mesh.node("sub")
    sub = sub_node.subscribe("leak.x", block=True)      # no drops: every one counted
    pub.wait_subscribers("leak.x", 1, WAIT)
    body = bytes(range(100))
    total, batch = 1_000_000, 1000
    received = 0
    marks = {}
    for i in range(total // batch):
        for _ in range(batch):
            pub.publish("leak.x", body)
        while received < (i + 1) * batch:
            msg = sub.get(WAIT)
            received += 1
        if received in (100_000, 500_000, 1_000_000):
            marks[received] = rss_kib()
    assert received == total and msg.body == body
    growth = marks[1_000_000] - marks[100_000]
    # a leak of even 16 bytes a message would be 14 MiB here
    assert growth < 8 * 1024, marks
