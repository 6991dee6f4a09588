import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elegy import RNGSeq, States


def test_update_returns_new_states_and_leaves_original_unchanged():
    s = States(net_params=1)
    t = s.update(net_params=2, extra="x")
    assert (s.net_params, t.net_params, t.extra) == (1, 2, "x")
    assert "extra" not in s


def test_maybe_update_fills_only_missing_or_none_fields():
    s = States(a=1, b=None)
    t = s.maybe_update(a=10, b=20, c=30)
    assert (t.a, t.b, t.c) == (1, 20, 30)


def test_missing_field_error_lists_present_fields():
    with pytest.raises(AttributeError, match=r"no field 'optimizer'.*fields present: net_params, rng"):
        States(net_params=1, rng=2).optimizer


def test_states_are_immutable():
    with pytest.raises(AttributeError, match="immutable"):
        States(a=1).a = 2


def test_states_is_a_mapping_and_a_pytree():
    s = States(b=jnp.ones(2), a={"w": jnp.zeros(3)})
    doubled = jax.tree_util.tree_map(lambda v: v + 1, s)
    assert isinstance(doubled, States)
    np.testing.assert_array_equal(doubled.a["w"], np.ones(3))
    np.testing.assert_array_equal(doubled["b"], 2 * np.ones(2))
    assert sorted(dict(s)) == ["a", "b"]


def test_states_pass_through_jit():
    s = States(w=jnp.ones(2), rng=RNGSeq(0))
    out = jax.jit(lambda st: st.update(w=st.w * 3))(s)
    np.testing.assert_array_equal(out.w, 3 * np.ones(2))
    np.testing.assert_array_equal(out.rng.key, s.rng.key)


def test_states_pickle_round_trip():
    s = States(w=np.arange(3), rng=RNGSeq(1))
    t = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(t.w, s.w)
    np.testing.assert_array_equal(t.rng.key, s.rng.key)


def test_rngseq_next_never_repeats_and_matches_jax_split():
    rng = RNGSeq(0)
    keys = [rng.next() for _ in range(3)]
    assert len({tuple(np.asarray(k).ravel()) for k in keys}) == 3
    carry, first = jax.random.split(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(keys[0], first)
    np.testing.assert_array_equal(keys[1], jax.random.split(carry)[1])


def test_invalid_field_name_is_rejected():
    with pytest.raises(TypeError, match="identifiers"):
        States({"not valid": 1})


def _flat(states):
    leaves, treedef = jax.tree_util.tree_flatten(states)
    return treedef, leaves


def test_states_from_leaves_read_like_the_states_they_came_from():
    original = States(net_params={"w": jnp.ones(2), "b": jnp.zeros(())}, rng=RNGSeq(3), epoch=np.int32(1))
    treedef, leaves = _flat(original)
    lazy = States.from_leaves(treedef, leaves)
    assert lazy.leaves()[1] is leaves  # passed on unread: the list itself
    assert set(lazy) == set(original) and lazy.epoch == 1
    np.testing.assert_array_equal(lazy.net_params["w"], original.net_params["w"])
    assert lazy.rng.key is original.rng.key
    assert repr(lazy) == repr(jax.tree_util.tree_map(lambda leaf: leaf, original))  # (fields sorted)
    rebuilt = pickle.loads(pickle.dumps(jax.device_get(lazy)))
    assert sorted(rebuilt) == sorted(original)


def test_states_from_leaves_see_in_place_changes_made_after_a_read():
    """Once read, the fields are what counts: a container changed in place is flattened anew."""
    original = States(net_params={"w": jnp.ones(2)}, rng=RNGSeq(0))
    lazy = States.from_leaves(*_flat(original))
    lazy.net_params["w"] = jnp.full(2, 7.0)
    treedef, leaves = lazy.leaves()
    assert treedef == _flat(original)[0]
    np.testing.assert_array_equal(treedef.unflatten(leaves).net_params["w"], [7.0, 7.0])
    with pytest.raises(AttributeError, match="no field '_missing'"):
        lazy._missing
