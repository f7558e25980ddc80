"""Search space: arch strings, masks, indices."""
import numpy as np
import pytest

from monas_jax import benchmark, space

BEST_C100 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
             "nor_conv_3x3~2|")


def test_round_trip_string_mask_index_for_every_cell():
  table = benchmark.load_table()
  for i, s in enumerate(table.arch_str):
    a = space.Arch.from_string(s)
    assert a.to_string() == s
    assert space.Arch.from_mask(a.to_mask()) == a
    assert benchmark.index_of(a) == i
  assert len(set(table.arch_str)) == space.NUM_CELLS
  assert {tuple(o) for o in table.ops} == set(space.all_ops_lexicographic())


def test_known_cell():
  a = space.Arch.from_string(BEST_C100)
  assert a.names == ("nor_conv_3x3",) * 3 + ("skip_connect", "nor_conv_3x3", "nor_conv_3x3")
  assert benchmark.lookup(a)["cifar100_test_acc"] == pytest.approx(73.5133)
  m = a.to_mask()
  assert m.shape == (6, 5) and m.sum() == 6 and m[3, space.OP_INDEX["skip_connect"]] == 1


@pytest.mark.parametrize("bad, token", [
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "'conv'"),
    ("|none~0|+|none~0|none~1|", "2 node groups"),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "4 node groups"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "'none~1'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "has 1 inputs, expected 2"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "'none0'"),
    ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "enclosed"),
])
def test_malformed_strings_name_the_token(bad, token):
  with pytest.raises(ValueError, match=token.replace("|", r"\|").replace("+", r"\+")):
    space.Arch.from_string(bad)


def test_masks():
  full = space.full_mask(("none",))
  assert full.sum() == 24 and not full[:, 0].any()
  assert len(space.single_path_ops(full)) == 4 ** 6
  with pytest.raises(ValueError, match="edge 2 has 0 active"):
    m = space.ops_to_mask((1,) * 6)
    m[2] = 0
    space.mask_to_ops(m)
  with pytest.raises(ValueError, match="edge 0 has no active"):
    space.validate_mask(np.zeros((6, 5)))
  with pytest.raises(ValueError, match="unknown operator"):
    space.full_mask(("conv",))


def test_arch_validation():
  with pytest.raises(ValueError):
    space.Arch((0, 1, 2))
  with pytest.raises(ValueError):
    space.Arch((0, 1, 2, 3, 4, 5))
  with pytest.raises(ValueError, match="index must be in"):
    benchmark.arch_at(15625)
  assert benchmark.arch_at(9930).to_string() == BEST_C100


def test_edges_into_lists_the_non_none_edges_of_a_node_in_edge_order():
  ops = space.parse_arch_str(
      "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
  conv3, pool, skip, conv1 = (space.OP_INDEX[n] for n in
                              ("nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_1x1"))
  assert space.edges_into(1, ops) == [(0, 0, conv3)]
  assert space.edges_into(2, ops) == [(2, 1, pool)]
  assert space.edges_into(3, ops) == [(3, 0, skip), (5, 2, conv1)]
