"""The claimed queue's take (mdm.claimqueue): a queue that fits the limit becomes the claim by a
rename, one that does not gives up its first entries, and either way the flusher reads its
claim back in pages, in queue order, while producers keep pushing to a queue of their own."""

import pytest

from mdm import claimqueue, redis_client


@pytest.fixture
def queue():
    q = claimqueue.ClaimedQueue("test:claims", "test")
    client = redis_client.client()
    client.delete(q.key(), q.claims_key())
    yield q, client
    client.delete(q.key(), q.claims_key(), *client.keys(q.claim_prefix() + "*"))


def push(client, q, *entries):
    client.rpush(q.key(), *entries)


def test_a_queue_within_the_limit_is_claimed_whole_and_read_back_in_pages_in_order(queue, monkeypatch):
    q, client = queue
    monkeypatch.setattr(claimqueue, "READ_PAGE", 2)
    pages = []
    lrange = client.lrange
    monkeypatch.setattr(client, "lrange", lambda key, start, end: pages.append((start, end)) or lrange(key, start, end))
    push(client, q, b"a", b"b", b"c", b"d", b"e")
    claim, requeued = q.take(10)
    assert claim.entries == [b"a", b"b", b"c", b"d", b"e"] and requeued == 0
    assert pages == [(0, 1), (2, 3), (4, 5)]
    assert not client.exists(q.key()) and set(q.claims()) == {claim.id}
    push(client, q, b"f")  # a producer after the take: a queue of its own, not the claim
    assert client.lrange(q.claim_prefix() + claim.id, 0, -1) == [b"a", b"b", b"c", b"d", b"e"]
    q.release(claim)
    assert not client.exists(q.claim_prefix() + claim.id) and q.claims() == {}
    assert q.take(10)[0].entries == [b"f"]


def test_a_queue_over_the_limit_gives_up_its_first_entries_and_keeps_the_rest(queue):
    q, client = queue
    push(client, q, b"1", b"2", b"3", b"4", b"5")
    first, _ = q.take(3)
    assert first.entries == [b"1", b"2", b"3"] and client.lrange(q.key(), 0, -1) == [b"4", b"5"]
    second, _ = q.take(3)
    assert second.entries == [b"4", b"5"] and set(q.claims()) == {first.id, second.id}
    assert q.take(3)[0].entries == []  # nothing left: no claim registered
    assert set(q.claims()) == {first.id, second.id}


def test_a_claim_given_back_goes_ahead_of_what_was_pushed_since_and_a_dead_flushers_is_taken_again(queue):
    q, client = queue
    push(client, q, b"a", b"b")
    claim, _ = q.take(10)  # renamed whole
    push(client, q, b"c")
    q.give_back(claim)
    assert client.lrange(q.key(), 0, -1) == [b"a", b"b", b"c"] and q.claims() == {}
    dead, _ = q.take(10)  # a flusher that dies holding it
    push(client, q, b"d")
    again, requeued = q.take(10, stale_s=0)
    assert requeued == 1 and again.entries == [b"a", b"b", b"c", b"d"] and set(q.claims()) == {again.id}
    assert not client.exists(q.claim_prefix() + dead.id)
