"""The training side: the loss, the metrics, the LightningModule, the run-file callbacks,
resuming, and the build step that turns a composed config into a run."""
