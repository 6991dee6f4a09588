"""One process of a two-process data-parallel run (`test_distributed.py` starts both).

Usage: python two_processes.py PROCESS_ID PORT OUT_DIR

Each process has 2 CPU devices; `jax.distributed` joins them into one 4-device mesh over
127.0.0.1 with gloo collectives. Both train the same model on the same arrays (each
builds only its own rows of every batch), process 0 alone prints and logs, each writes
its final parameters to OUT_DIR/params_<id>.npz, and both save the model together.

Then each process reads only its own share (`elegy.data.process_local`): a Grain
`MapDataset` of every other row, in batches of 15. The shares side by side hold the rows
of the one-process batches of 30, unshuffled; the parameters go to
OUT_DIR/local_params_<id>.npz, and its predictions of the shares (the global ones, every
process's share of a batch in process order) to OUT_DIR/local_predictions_<id>.npy.
Shares of different sizes are refused in both processes alike before anything compiles.
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

    def make_model(**kwargs):
        return elegy.Model(
            mlp_forward,
            loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            optimizer=optax.adam(1e-2),
            distribution=elegy.distributed.DataParallel(),
            **kwargs,
        )

    def save_params(model, name):
        params = {
            jax.tree_util.keystr(path): np.asarray(leaf.addressable_data(0))
            for path, leaf in jax.tree_util.tree_flatten_with_path(model.states.net_params)[0]
        }
        np.savez(os.path.join(out_dir, f"{name}_{process_id}.npz"), **params)

    model = make_model()
    logs = elegy.callbacks.TensorBoard(os.path.join(out_dir, "logs"))
    # Both processes write every checkpoint together; process 0 alone prunes the old ones.
    checkpoints = elegy.callbacks.ModelCheckpoint(os.path.join(out_dir, "ckpt", "e{epoch}"), max_to_keep=2)
    history = model.fit(x, y, batch_size=30, epochs=3, verbose=2, callbacks=[logs, checkpoints])
    save_params(model, "params")
    np.save(os.path.join(out_dir, f"loss_{process_id}.npy"), np.asarray(history.history["loss"]))
    model.save(os.path.join(out_dir, "saved"))  # every process together
    print(f"tensorboard joined: {logs.model is not None}", flush=True)  # set by fit's callback list

    import grain

    rows = grain.MapDataset.source(list(zip(x, y, strict=True)))
    share = rows[jax.process_index() :: jax.process_count()].batch(15)  # 65 rows: 4 x 15 and 5
    local = make_model(steps_per_execution=2)  # batches 1-2 and 3-4 stacked, batch 5 alone
    history = local.fit(elegy.data.process_local(share), epochs=3, verbose=0)
    save_params(local, "local_params")
    np.save(os.path.join(out_dir, f"local_loss_{process_id}.npy"), np.asarray(history.history["loss"]))
    inputs = elegy.data.process_local(share.map(lambda batch: (batch[0],)))
    np.save(os.path.join(out_dir, f"local_predictions_{process_id}.npy"), local.predict(inputs, verbose=0))

    uneven = [(x[: 15 - process_id], y[: 15 - process_id])]  # 15 rows in process 0, 14 in process 1
    try:
        make_model().fit(elegy.data.process_local(uneven), epochs=1, verbose=0)
    except ValueError as error:
        print(f"uneven shares refused: {error}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
