"""`rank_shard`: every item scored once, every process the same number of rows."""

import pytest

from cadft.model.sharding import rank_shard


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 9])
def test_shards_cover_each_item_once_with_equal_lengths(n, world):
    items = list(range(100, 100 + n))
    shards = [rank_shard(items, world, rank) for rank in range(world)]
    assert len({len(shard) for shard, _ in shards}) == 1  # the same number of forwards everywhere
    assert all(len(shard) == len(real) for shard, real in shards)
    kept = [item for shard, real in shards for item, is_real in zip(shard, real) if is_real]
    assert kept == items  # in order, each exactly once
    assert all(item in items for shard, _ in shards for item in shard)  # padding repeats a real item


def test_example_and_bad_rank():
    assert rank_shard(list(range(7)), 2, 1) == ([4, 5, 6, 0], [True, True, True, False])
    assert rank_shard(["a"], 2, 1) == (["a"], [False])
    with pytest.raises(ValueError, match="rank=2, world=2"):
        rank_shard([1], 2, 2)
