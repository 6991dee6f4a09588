"""One process of a two-process data-parallel run (`test_distributed.py` starts both).

Usage: python two_processes.py PROCESS_ID PORT OUT_DIR

Each process has 2 CPU devices; `jax.distributed` joins them into one 4-device mesh over
127.0.0.1 with gloo collectives. Both train the same model on the same arrays (each
builds only its own rows of every batch), process 0 alone prints and logs, each writes
its final parameters to OUT_DIR/params_<id>.npz, and both save the model together.
"""

import os
import sys


def main(process_id: int, port: int, out_dir: str) -> None:
    # Everything happens here, not at import: pytest imports this file for doctests.
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2 --xla_cpu_multi_thread_eigen=false"
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)

    import numpy as np
    import optax

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
    from tests.conftest import blobs, mlp_forward

    import elegy

    x, y = blobs(130)
    model = elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
        distribution=elegy.distributed.DataParallel(),
    )
    logs = elegy.callbacks.TensorBoard(os.path.join(out_dir, "logs"))
    history = model.fit(x, y, batch_size=30, epochs=3, verbose=2, callbacks=[logs])
    params = {
        jax.tree_util.keystr(path): np.asarray(leaf.addressable_data(0))
        for path, leaf in jax.tree_util.tree_flatten_with_path(model.states.net_params)[0]
    }
    np.savez(os.path.join(out_dir, f"params_{process_id}.npz"), **params)
    np.save(os.path.join(out_dir, f"loss_{process_id}.npy"), np.asarray(history.history["loss"]))
    model.save(os.path.join(out_dir, "saved"))  # every process together
    print(f"tensorboard joined: {logs.model is not None}", flush=True)  # set by fit's callback list


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
