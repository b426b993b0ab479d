"""The trainer and its parts: `CADFTTrainer` (trainer.py, the step: forward, token loss,
sample weights through the estimator) and the concerns it mixes in, each in a file of its
own: the sample ids and data checks (data.py), crash-safe checkpoints (checkpoints.py,
checkpoint_folders.py, state_io.py), the rewriting hooks (rewriting.py), the per-token inputs
a token loss asks for (token_inputs.py), and leaving a torchrun run (teardown.py)."""
