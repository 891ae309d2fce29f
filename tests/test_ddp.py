"""Under DDP (2 CPU processes, gloo) the validation metrics and predictions are exact: every
validation sample counted once, even when the set does not divide evenly across ranks."""

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from cloudml.training.build import build
from conftest import TINY_RUN, run_cli


def test_ddp_metrics_and_predictions_equal_a_single_process_evaluation(tmp_path, cli_env):
    run = tmp_path / "ddp"
    result = run_cli("train.py", *TINY_RUN, "data.synthetic.samples_per_flight=41", "trainer=ddp", "trainer.devices=2",
                     f"hydra.run.dir={run}", env=cli_env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    preds = np.load(run / "predictions.npz", allow_pickle=False)
    val_index = np.load(run / "split.npz")["val_index"]
    assert len(val_index) % 2 == 1  # uneven across 2 ranks: a padding sampler would duplicate one
    assert np.array_equal(preds["index"], val_index)

    # Re-evaluate the final weights in this single process on the same validation set.
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    cfg.data.cache_dir = cli_env["CLOUDML_CACHE"]
    data, module, _ = build(cfg)  # as train.py builds it, without run files
    module.load_state_dict(torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    model = module.model.eval()
    batch = data.val_set.__getitems__(list(range(len(data.val_set))))
    with torch.no_grad():
        pred_km = data.normalizer.target_to_km(model(batch["images"], batch["scalars"]).double().numpy())
    assert np.allclose(preds["pred"], pred_km, atol=1e-5)

    y, p = preds["target"], pred_km
    final = summary["final"]
    assert final["val_variance_ratio"] == pytest.approx(p.var() / y.var(), rel=1e-5)
    assert final["val_r2"] == pytest.approx(1 - np.mean((p - y) ** 2) / y.var(), rel=1e-4, abs=1e-5)
    assert final["val_mae"] == pytest.approx(np.mean(np.abs(p - y)), rel=1e-5)
    assert final["val_rmse"] == pytest.approx(np.sqrt(np.mean((p - y) ** 2)), rel=1e-5)
